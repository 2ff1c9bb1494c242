"""End to end on the real default model: `potion lsp` over stdio answers an inline completion in a
GenServer, serves the same cursor and a typed-through suggestion from its cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsp_helpers import lsp_session, open_doc, status, vscode_capabilities, wait_ready
from lsprotocol import types

from potion import registry

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "counter.ex"


def inline_params(uri: str, position: types.Position) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=position,
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
    )


async def test_inline_completion_on_the_default_model(home, tmp_path):
    model = registry.resolve()
    text = SAMPLE.read_text()
    uri = (tmp_path / "counter.ex").as_uri()
    options = {"model": str(model), "debounceMs": 0, "maxTokens": 32, "timeBudgetMs": 60_000}
    async with lsp_session(home, capabilities=vscode_capabilities(), options=options) as client:
        await wait_ready(client, timeout=120)
        open_doc(client, uri, text)
        position = types.Position(line=13, character=4)  # the empty body of increment/0
        first = await client.text_document_inline_completion_async(inline_params(uri, position))
        assert len(first.items) == 1
        suggestion = first.items[0].insert_text
        assert suggestion.strip()
        assert not suggestion.startswith(" ")  # the cursor is already indented
        assert "<|" not in suggestion  # no FIM control tokens leak
        assert "defmodule" not in suggestion  # post-processing stopped at the block
        # The same cursor again: answered from the cache, no second generation.
        again = await client.text_document_inline_completion_async(inline_params(uri, position))
        assert again.items[0].insert_text == suggestion
        # Type the first character of the suggestion: the rest comes from the cache too.
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(start=position, end=position), text=suggestion[0]
                    )
                ],
            )
        )
        typed = types.Position(line=13, character=5)
        rest = await client.text_document_inline_completion_async(inline_params(uri, typed))
        assert rest.items[0].insert_text == suggestion[1:]
        state = await status(client)
        assert state["generations"] == 1 and state["cache_hits"] == 2


async def test_the_readme_demo_shows_completion_hover_and_scaffold(home, monkeypatch):
    from lsp.demo import run_demo

    model = str(registry.resolve())  # before POTION_HOME moves: the model stays where it is
    monkeypatch.setenv("POTION_HOME", str(home))  # the demo's telemetry stays out of the user's data

    shown = await run_demo(model, timeout=120)
    assert shown["inline"].strip()
    assert "start_link" in shown["hover"]
    assert "use GenServer" in shown["scaffold"] and "defmodule Demo.Worker" in shown["scaffold"]
