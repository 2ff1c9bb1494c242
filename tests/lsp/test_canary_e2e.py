"""End to end on the real default model: two in-process llama.cpp models, the stable one and a canary
(the same GGUF loaded twice), split by suggestion id, each suggestion recorded under its arm."""

from __future__ import annotations

import asyncio
import time

import pytest
from lsp_helpers import lsp_session, open_doc, status, vscode_capabilities, wait_ready
from lsprotocol import types

from lsp.model_stats import rows
from potion import registry
from potion.backends.canary import CANARY, STABLE, routes_to_canary

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

SOURCE = "defmodule A do\n" + "".join(f"  def f{i}(x) do\n    \n  end\n" for i in range(4)) + "end\n"


def ready(canary) -> bool:
    return canary["ready"] if isinstance(canary, dict) else canary.ready


async def test_two_in_process_models_share_the_suggestions(home, tmp_path):
    model = str(registry.resolve())
    uri = (tmp_path / "a.ex").as_uri()
    options = {
        "model": model,
        "debounceMs": 0,
        "maxTokens": 8,
        "timeBudgetMs": 60_000,
        "canary": {"model": model, "share": 0.5},
    }
    async with lsp_session(home, capabilities=vscode_capabilities(), options=options) as client:
        await wait_ready(client, timeout=120)
        deadline = time.monotonic() + 120
        while not ready((state := await status(client))["canary"]):
            assert not client.messages, client.messages  # e.g. refused: not enough memory
            assert time.monotonic() < deadline, state
            await asyncio.sleep(0.1)
        open_doc(client, uri, SOURCE)
        for i in range(4):
            params = types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=2 + 3 * i, character=4),
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
            )
            await client.text_document_inline_completion_async(params)
    recorded = {r["id"]: r for r in rows(home / "data" / "telemetry.sqlite3")}
    assert len(recorded) == 4
    for sid, row in recorded.items():
        assert row["arm"] == (CANARY if routes_to_canary(sid, 0.5) else STABLE)
        assert row["model"]
