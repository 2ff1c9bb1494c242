"""Canary / A-B in the language server: settings, routing in the engine, end to end with the scripted
fake backend and with two fake OpenAI-compatible servers, and `potion stats --by-model`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lsp_helpers import lsp_session, vscode_capabilities, wait_ready
from lsprotocol import types

from lsp.engine import CompletionEngine, CompletionRequest, EngineConfig
from lsp.errors import ConfigError
from lsp.lifecycle import ServerConfig, parse_settings
from lsp.model_stats import rows
from potion.backends import FakeBackend, ModelInfo
from potion.backends.canary import CANARY, STABLE, CanaryConfig, routes_to_canary
from tests.potion.fakes_openai import FakeOpenAIServer

pytestmark = pytest.mark.timeout(90)

N_FUNCTIONS = 30
SOURCE = "defmodule A do\n" + "".join(f"  def f{i} do\n    \n  end\n" for i in range(N_FUNCTIONS)) + "end\n"
URI = "file:///w/lib/a.ex"


# -- settings ---------------------------------------------------------------------------------------


def test_canary_settings_nested_dotted_and_camel_case():
    nested = parse_settings(
        {"potion": {"canary": {"model": "cand", "share": 0.25, "backendUrl": "http://h"}}}
    )
    assert nested.canary == CanaryConfig(model="cand", backend_url="http://h", share=0.25)
    dotted = parse_settings({"canary.model": "cand", "canary.share": 1})
    assert dotted.canary == CanaryConfig(model="cand", share=1.0)
    # Other settings stay; a later change of the share alone keeps the model.
    later = parse_settings({"canary": {"share": 0.5}}, dotted)
    assert later.canary == CanaryConfig(model="cand", share=0.5)
    assert parse_settings({}).canary == CanaryConfig()


@pytest.mark.parametrize("share", [1.5, -0.2, "half", None, True])
def test_a_share_outside_0_1_is_a_config_error_naming_the_setting(share):
    with pytest.raises(ConfigError, match=r"'potion\.canary\.share' must be"):
        parse_settings({"canary": {"model": "cand", "share": share}})


def test_other_bad_canary_settings():
    with pytest.raises(ConfigError, match=r"'potion\.canary' must be an object"):
        parse_settings({"canary": "cand"})
    with pytest.raises(ConfigError, match=r"'potion\.canary\.model' must be a string"):
        parse_settings({"canary": {"model": 3}})
    with pytest.raises(ConfigError, match="latency_warning_ms|latencyWarningMs"):
        parse_settings({"latencyWarningMs": -1})


def test_a_bad_share_keeps_the_previous_settings():
    base = parse_settings({"canary": {"model": "cand", "share": 0.3}})
    with pytest.raises(ConfigError):
        parse_settings({"canary": {"share": 7}}, base)
    assert base.canary.share == 0.3  # parse_settings builds a new config; the server keeps `base`
    assert ServerConfig().canary.share == 0.0


# -- routing in the engine --------------------------------------------------------------------------


def fake(answer: str, name: str) -> FakeBackend:
    stable = FakeBackend().info
    return FakeBackend(
        [answer], info=ModelInfo(name=name, family=stable.family, fim_tokens=stable.fim_tokens)
    )


def request(i: int) -> CompletionRequest:
    return CompletionRequest("file:///a.ex", f"defmodule A do\n  def f{i} do\n    ", "\n  end\nend\n")


async def test_the_engine_routes_each_suggestion_by_its_id():
    stable, candidate = fake("x = :stable", "old"), fake("x = :canary", "new")
    engine = CompletionEngine(EngineConfig(debounce_ms=0), backend=stable)
    engine.set_canary(candidate, 0.5)
    arms = []
    for i in range(40):
        suggestion = await engine.suggest(request(i))
        expected = CANARY if routes_to_canary(suggestion.id, 0.5) else STABLE
        assert suggestion.arm == expected
        assert (suggestion.model, suggestion.text) == (
            ("new", "x = :canary") if expected == CANARY else ("old", "x = :stable")
        )
        arms.append(expected)
    assert set(arms) == {STABLE, CANARY}
    assert len(candidate.prompts) == arms.count(CANARY) and len(stable.prompts) == arms.count(STABLE)
    # A cached answer keeps the model that wrote it.
    again = await engine.suggest(request(0))
    assert again.cache_hit and again.text.startswith("x = :")
    assert again.model == ("new" if again.text == "x = :canary" else "old")
    engine.set_canary(None)
    assert [(await engine.suggest(request(100 + i))).arm for i in range(5)] == [STABLE] * 5
    engine.close()


async def test_an_identical_prompt_is_not_served_from_the_other_models_cache():
    stable, candidate = fake("x = :stable", "old"), fake("x = :canary", "new")
    engine = CompletionEngine(EngineConfig(debounce_ms=0), backend=stable)
    engine.set_canary(candidate, 1.0)
    first = await engine.suggest(request(1))
    engine.set_canary(None)
    second = await engine.suggest(CompletionRequest("file:///b.ex", request(1).prefix, request(1).suffix))
    assert (first.text, second.text) == ("x = :canary", "x = :stable") and not second.cache_hit
    engine.close()


async def test_errors_are_counted_per_model():
    broken = FakeBackend(
        ["x = 1"],
        fail_after=0,
        info=ModelInfo(
            name="broken", family=FakeBackend().info.family, fim_tokens=FakeBackend().info.fim_tokens
        ),
    )
    engine = CompletionEngine(EngineConfig(debounce_ms=0), backend=fake("x = :stable", "old"))
    engine.set_canary(broken, 1.0)
    assert (await engine.suggest(request(1))) is None
    assert engine.stats.errors_by_model == {"broken": 1}
    engine.close()


# -- end to end -------------------------------------------------------------------------------------


def inline_params(line: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI),
        position=types.Position(line=line, character=4),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
    )


def open_source(client) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=URI, language_id="elixir", version=1, text=SOURCE)
        )
    )


async def wait_for(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"{what} not reached"
        await asyncio.sleep(0.02)


async def canary_status(client) -> dict:
    result = await client.protocol.send_request_async("potion/status", {})
    result = result if isinstance(result, dict) else result._asdict()
    canary = result["canary"]
    return canary if isinstance(canary, dict) else canary._asdict()


async def suggestions(client, count: int = N_FUNCTIONS) -> list[tuple[str, str]]:
    """(text, suggestion id) of an inline completion in each function body."""
    answers = []
    for i in range(count):
        result = await client.text_document_inline_completion_async(inline_params(2 + 3 * i))
        assert len(result.items) == 1
        item = result.items[0]
        answers.append((item.insert_text, item.command.arguments[0]))
    return answers


def stats_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "POTION_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "potion.cli", "stats", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def fake_canary_options(**canary_fake) -> dict:
    return {
        "backend": "fake",
        "debounceMs": 0,
        "fake": {"responses": ["x = :stable"], "canary": {"responses": ["x = :canary"], **canary_fake}},
        "canary": {"model": "candidate-1", "share": 0.5},
    }


async def test_half_the_suggestions_go_to_the_canary_and_telemetry_says_which(home):
    async with lsp_session(home, capabilities=vscode_capabilities(), options=fake_canary_options()) as client:
        await wait_ready(client)
        await wait_for(lambda: _ready(client), what="canary ready")
        open_source(client)
        answers = await suggestions(client)
        for _text, sid in answers[:10]:
            await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="potion.accepted", arguments=[sid])
            )
        assert not client.messages
    for text, sid in answers:
        assert text == ("x = :canary" if routes_to_canary(sid, 0.5) else "x = :stable")
    texts = [text for text, _ in answers]
    assert 0 < texts.count("x = :canary") < len(texts)

    recorded = {row["id"]: row for row in rows(home / "data" / "telemetry.sqlite3")}
    for text, sid in answers:
        row = recorded[sid]
        assert (row["model"], row["arm"]) == (
            ("candidate-1", CANARY) if text == "x = :canary" else ("fake", STABLE)
        )
    assert sum(recorded[sid]["accepted"] for _, sid in answers) == 10

    done = stats_cli(home, "--by-model", "--json", "--min-samples", "2")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    by_arm = {m["arm"]: m for m in report["models"]}
    assert by_arm[CANARY]["model"] == "candidate-1" and by_arm[STABLE]["model"] == "fake"
    assert by_arm[CANARY]["shown"] + by_arm[STABLE]["shown"] == N_FUNCTIONS
    assert report["comparison"]["candidate"]["model"] == "candidate-1"
    assert {m["metric"] for m in report["comparison"]["metrics"]} == {
        "acceptance_rate",
        "mean_latency_ms",
        "timeout_rate",
    }
    text = stats_cli(home, "--by-model")
    assert text.returncode == 0, text.stderr
    assert "candidate-1 [canary]" in text.stdout and "fake [stable]" in text.stdout
    assert "verdict: not enough data yet" in text.stdout  # 30 suggestions split in two: under 30 each


async def _ready(client) -> bool:
    return (await canary_status(client))["ready"]


async def test_a_canary_model_that_does_not_exist_is_one_message_and_the_stable_model_serves(home):
    options = {**fake_canary_options(), "canary": {"model": "no-such-model", "share": 0.5}}
    del options["fake"]["canary"]
    async with lsp_session(home, capabilities=vscode_capabilities(), options=options) as client:
        await wait_ready(client)

        async def said() -> bool:
            return bool(client.messages)

        await wait_for(said, what="a message")
        open_source(client)
        answers = await suggestions(client, 12)
        state = await canary_status(client)
    assert len(client.messages) == 1 and client.messages[0].type == types.MessageType.Warning
    message = client.messages[0].message
    assert "the canary model no-such-model is not used: no model named 'no-such-model'" in message
    assert "The stable model serves every suggestion" in message
    assert {text for text, _ in answers} == {"x = :stable"}
    assert state["ready"] is False and "no-such-model" in state["error"]


async def test_a_canary_that_fails_to_load_is_one_message(home):
    options = fake_canary_options(load_error="out of memory while loading")
    async with lsp_session(home, capabilities=vscode_capabilities(), options=options) as client:
        await wait_ready(client)

        async def said() -> bool:
            return bool(client.messages)

        await wait_for(said, what="a message")
        open_source(client)
        answers = await suggestions(client, 8)
    assert len(client.messages) == 1
    assert "canary model candidate-1 is not used: out of memory while loading" in client.messages[0].message
    assert {text for text, _ in answers} == {"x = :stable"}


async def test_a_bad_share_is_reported_and_the_running_split_stays(home):
    async with lsp_session(home, capabilities=vscode_capabilities(), options=fake_canary_options()) as client:
        await wait_ready(client)
        await wait_for(lambda: _ready(client), what="canary ready")
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"potion": {"canary": {"share": 1.5}}})
        )

        async def said() -> bool:
            return bool(client.messages)

        await wait_for(said, what="a message")
        assert client.messages[0].type == types.MessageType.Error
        assert "'potion.canary.share' must be between 0 and 1, got 1.5" in client.messages[0].message
        assert (await canary_status(client))["share"] == 0.5
        # Share 1: every suggestion to the canary, without reloading it.
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"potion": {"canary": {"share": 1}}})
        )

        async def all_canary() -> bool:
            return (await canary_status(client))["share"] == 1.0

        await wait_for(all_canary, what="share 1")
        open_source(client)
        answers = await suggestions(client, 6)
        assert {text for text, _ in answers} == {"x = :canary"}
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"potion": {"canary": {"share": 0}}})
        )

        async def off() -> bool:
            state = await canary_status(client)
            return state["share"] == 0.0 and not state["ready"]

        await wait_for(off, what="canary off")
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=SOURCE + "\n")],
            )
        )
        answers = await suggestions(client, 6)
        assert {text for text, _ in answers} == {"x = :stable"}
        assert len(client.messages) == 1


async def test_two_servers_stable_and_canary(home):
    with (
        FakeOpenAIServer(pieces=["x = :stable"], model_id="qwen2.5-coder-stable") as old,
        FakeOpenAIServer(pieces=["x = :canary"], model_id="qwen2.5-coder-canary") as new,
    ):
        options = {
            "backendUrl": old.url,
            "debounceMs": 0,
            "canary": {"backendUrl": new.url, "share": 0.5},
        }
        async with lsp_session(home, capabilities=vscode_capabilities(), options=options) as client:
            await wait_ready(client)
            await wait_for(lambda: _ready(client), what="canary ready")
            open_source(client)
            answers = await suggestions(client, 16)
            assert not client.messages
        canary_ids = {sid for text, sid in answers if text == "x = :canary"}
        assert canary_ids == {sid for _, sid in answers if routes_to_canary(sid, 0.5)}
        assert 0 < len(canary_ids) < 16
        assert len(new.bodies("/v1/completions")) == len(canary_ids)
        assert len(old.bodies("/v1/completions")) == 16 - len(canary_ids)
    recorded = rows(home / "data" / "telemetry.sqlite3")
    assert {(r["model"], r["arm"]) for r in recorded} == {
        ("qwen2.5-coder-stable", STABLE),
        ("qwen2.5-coder-canary", CANARY),
    }


def test_a_telemetry_database_from_before_the_canary_is_upgraded_in_place(tmp_path):
    import sqlite3

    from lsp.model_stats import samples
    from lsp.telemetry import MIGRATIONS, Telemetry

    path = tmp_path / "t.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("".join(MIGRATIONS[:2]) + "PRAGMA user_version = 2;")
    db.execute(
        "INSERT INTO suggestions (id, ts, uri, kind, latency_ms, shown)"
        " VALUES ('old', 1, 'u', 'inline', 50, 1)"
    )
    db.commit()
    db.close()
    Telemetry(path).close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 3
    (row,) = rows(path)
    assert (row["id"], row["model"], row["arm"]) == ("old", "", STABLE)
    (group,) = samples([row])
    assert group.label == "(unknown model) [stable]" and group.shown == 1
