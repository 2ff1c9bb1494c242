"""End to end: a quantized export loads in `potion lsp` by its registry name (the editors' `potion.model`
setting) and answers an inline completion."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lsp"))  # the LSP tests' own helpers
from lsp_helpers import lsp_session, open_doc, status, vscode_capabilities, wait_ready  # noqa: E402
from lsprotocol import types  # noqa: E402

from potion.gguf_header import read_metadata  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "counter.ex"


@pytest.mark.parametrize("spec", ["tiny-qwen2:q8_0", "qwen2-on-base"])
async def test_potion_lsp_completes_with_an_exported_model_by_name(tiny_exports, session_env, tmp_path, spec):
    tiny = tiny_exports["qwen2"]
    if spec == "qwen2-on-base":  # the adapter GGUF on its base, applied by llama.cpp at load time
        spec = f"{tiny.base_gguf} + tiny-qwen2"
        expected = read_metadata(tiny.base_gguf, keys={"general.name"})["general.name"]
    else:
        expected = read_metadata(tiny.export.file("q8_0").path, keys={"general.name"})["general.name"]
    uri = (tmp_path / "counter.ex").as_uri()
    options = {"model": spec, "debounceMs": 0, "maxTokens": 8, "timeBudgetMs": 60_000}
    async with lsp_session(session_env, capabilities=vscode_capabilities(), options=options) as client:
        ready = await wait_ready(client, timeout=120)
        assert ready["model"] == expected
        open_doc(client, uri, SAMPLE.read_text())
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=13, character=4),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
        )
        result = await client.text_document_inline_completion_async(params)
        assert result is not None
        state = await status(client)
        assert state["errors"] == 0 and state["generations"] == 1
        last = state["last"]  # pygls hands nested objects back as named tuples
        assert (last["completion_tokens"] if isinstance(last, dict) else last.completion_tokens) >= 1
