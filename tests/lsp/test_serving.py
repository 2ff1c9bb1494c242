"""Serving settings of the language server: promotions picked up without a restart, a pool of URLs."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest
from lsp_helpers import fake_options, lsp_session, open_doc, status, vscode_capabilities, wait_ready
from lsprotocol import types

from lsp.errors import ConfigError
from lsp.features.model_versions import follows_stable
from lsp.lifecycle import ServerConfig, parse_settings
from potion import versions

sys.path.append(
    str(Path(__file__).resolve().parent.parent / "potion")
)  # fakes_openai, shared with those tests
from fakes_openai import FakeOpenAIServer  # noqa: E402

pytestmark = pytest.mark.timeout(60)

URI = "file:///w/lib/a.ex"
SOURCE = "defmodule A do\n  def which do\n    \n  end\nend\n"

TENSOR = [("t", [32], 0)]  # one tensor: a GGUF the registry accepts


def inline_params(line: int = 2) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI),
        position=types.Position(line=line, character=4),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
    )


async def wait_for_model(client, name: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = await status(client)
        if state["model_ready"] and state["model"] == name:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the server never served {name}: {await status(client)}")


def edit(client, version: int) -> None:
    """A comment line on top (the cursor's line becomes 3): the next suggestion is not a cached one."""
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=f"# {version}\n{SOURCE}")],
        )
    )


async def test_a_promotion_reaches_the_running_server_at_its_next_request(home, make_gguf, monkeypatch):
    monkeypatch.setenv("POTION_HOME", str(home))
    old, new = str(make_gguf("old.gguf", tensors=TENSOR)), str(make_gguf("new.gguf", tensors=TENSOR))
    versions.promote(old)
    options = fake_options([], models={old: [":old_answer"], new: [":new_answer"]})
    async with lsp_session(home, capabilities=vscode_capabilities(), options=options) as client:
        await wait_ready(client)
        assert (await status(client))["model"] == old
        open_doc(client, URI, SOURCE)
        result = await client.text_document_inline_completion_async(inline_params())
        assert [i.insert_text for i in result.items] == [":old_answer"]

        versions.promote(new)  # as `potion models promote` in another terminal
        edit(client, 2)  # the next request notices
        await wait_for_model(client, new)
        result = await client.text_document_inline_completion_async(inline_params(3))
        assert [i.insert_text for i in result.items] == [":new_answer"]
        assert any("promoted" in m.message for m in client.messages)

        versions.rollback()
        edit(client, 3)
        await wait_for_model(client, old)
        result = await client.text_document_inline_completion_async(inline_params(3))
        assert [i.insert_text for i in result.items] == [":old_answer"]


def test_only_the_default_model_follows_stable() -> None:
    assert follows_stable(ServerConfig())
    assert follows_stable(ServerConfig(model="stable"))
    assert not follows_stable(ServerConfig(model="qwen2.5-coder-1.5b"))
    assert not follows_stable(ServerConfig(backend_url="http://127.0.0.1:8080"))
    assert not follows_stable(ServerConfig(backend="fake"))  # a plain scripted fake has no registry


def test_backend_url_takes_a_list_or_commas_and_names_a_bad_entry() -> None:
    config = parse_settings({"potion": {"backendUrl": ["http://a:8080", "http://b:8080/v1"]}})
    assert config.backend_url == "http://a:8080,http://b:8080/v1"
    assert parse_settings({"backendUrl": "http://a:8080, http://b:8080"}).backend_url == (
        "http://a:8080,http://b:8080"
    )
    assert parse_settings({"backendUrl": []}).backend_url is None
    with pytest.raises(ConfigError, match="backendUrl.*not an http"):
        parse_settings({"backendUrl": ["http://a:8080", "b:8080"]})
    with pytest.raises(ConfigError, match="backendUrl.*listed twice"):
        parse_settings({"backendUrl": "http://a:8080,http://a:8080/"})
    with pytest.raises(ConfigError, match="backendUrl"):
        parse_settings({"backendUrl": 8080})


async def test_a_pool_of_urls_serves_and_survives_a_dead_server(home):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with FakeOpenAIServer(["GenServer.call(__MODULE__, :which)"], model_id="qwen2.5-coder-fake") as good:
        options = {"backendUrl": [dead, good.url], "debounceMs": 0}
        async with lsp_session(home, capabilities=vscode_capabilities(), options=options) as client:
            await wait_ready(client)
            open_doc(client, URI, SOURCE)
            for _ in range(3):
                result = await client.text_document_inline_completion_async(inline_params())
                assert [i.insert_text for i in result.items] == ["GenServer.call(__MODULE__, :which)"]
            assert not [m for m in client.messages if m.type == types.MessageType.Error]


async def test_every_server_of_the_pool_down_is_one_message_and_it_recovers(home):
    answer = "GenServer.call(__MODULE__, :which)"
    first, second = FakeOpenAIServer([answer]), FakeOpenAIServer([answer])
    ports = [first._httpd.server_address[1], second._httpd.server_address[1]]
    with first, second:
        options = {"backendUrl": [first.url, second.url], "debounceMs": 0}
        async with lsp_session(home, capabilities=vscode_capabilities(), options=options) as client:
            await wait_ready(client)
            open_doc(client, URI, SOURCE)
            result = await client.text_document_inline_completion_async(inline_params())
            assert [i.insert_text for i in result.items] == [answer]
            first.__exit__(None, None, None)
            second.__exit__(None, None, None)

            started = time.monotonic()
            for version in range(2, 5):
                edit(client, version)
                result = await client.text_document_inline_completion_async(inline_params(3))
                assert list(result.items) == []
            assert time.monotonic() - started < 10  # no hang: each answer comes at once
            warnings = [m.message for m in client.messages if m.type == types.MessageType.Warning]
            assert len(warnings) == 1 and "all 2 servers of the pool are down" in warnings[0]

            with FakeOpenAIServer([answer], port=ports[1]):
                deadline = time.monotonic() + 30
                version = 5
                while True:  # the back-off (0.5 s at first) ends, a request probes and is served
                    version += 1
                    edit(client, version)
                    result = await client.text_document_inline_completion_async(inline_params(3))
                    if [i.insert_text for i in result.items] == [answer]:
                        break
                    assert time.monotonic() < deadline, "the pool never recovered"
                    await asyncio.sleep(0.1)


async def test_a_pool_down_at_startup_is_one_message_and_served_when_a_server_returns(home):
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    answer = "GenServer.call(__MODULE__, :which)"
    options = {"backendUrl": [f"http://127.0.0.1:{p}" for p in ports], "debounceMs": 0}
    async with lsp_session(home, capabilities=vscode_capabilities(), options=options) as client:
        deadline = time.monotonic() + 20
        while (await status(client))["model_state"] != "error":
            assert time.monotonic() < deadline, await status(client)
            await asyncio.sleep(0.05)
        open_doc(client, URI, SOURCE)
        result = await client.text_document_inline_completion_async(inline_params())
        assert list(result.items) == []  # no AI yet, and no hang
        with FakeOpenAIServer([answer], port=ports[1]):
            deadline = time.monotonic() + 40  # the retry back-off: 1 s, 2 s, 4 s, ...
            while not (await status(client))["model_ready"]:
                assert time.monotonic() < deadline, "the server never came back"
                await asyncio.sleep(0.1)
            edit(client, 2)
            result = await client.text_document_inline_completion_async(inline_params(3))
            assert [i.insert_text for i in result.items] == [answer]
        errors = [m.message for m in client.messages if m.type == types.MessageType.Error]
        infos = [m.message for m in client.messages if m.type == types.MessageType.Info]
        assert len(errors) == 1 and "keeps trying the server" in errors[0]
        assert any("answers again" in m for m in infos)
