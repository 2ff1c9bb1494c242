"""A file past the analysis limit (issue 17): skipped with a notice, memory stays bounded, and the server
keeps answering hover in other files."""

from __future__ import annotations

import json

import pytest
from lsp_helpers import RawLsp

from lsp.open_buffers import MAX_ANALYSIS_CHARS

pytestmark = pytest.mark.timeout(60)

A = "file:///work/lib/a.ex"
B = "file:///work/lib/b.ex"
FAKE = {"backend": "fake", "debounceMs": 0, "fake": {"responses": ["x = 1"]}}


def open_doc(raw: RawLsp, uri: str, text: str) -> None:
    raw.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "elixir", "version": 1, "text": text}},
    )


def test_a_file_past_the_analysis_limit_is_skipped_with_a_notice_and_hover_goes_on(home):
    logged = RawLsp(home)
    try:
        logged.initialize({}, FAKE)
        line = "  def f(x), do: x + 1\n"
        huge = "defmodule Huge do\n" + line * (MAX_ANALYSIS_CHARS // len(line) + 1) + "end\n"
        open_doc(logged, B, huge)
        open_doc(logged, A, "defmodule A do\n  def g(xs), do: Enum.map(xs, & &1)\nend\n")
        hover = logged.call(
            "textDocument/hover", {"textDocument": {"uri": A}, "position": {"line": 1, "character": 22}}
        )
        assert "Enum" in json.dumps(hover["result"])
        notices = [
            n["params"]["message"] for n in logged.notifications if n["method"] == "window/showMessage"
        ]
        assert any("analysed" in m and "b.ex" in m for m in notices), notices
        assert logged.rss_kb() < 1024 * 1024, "the huge file was analysed anyway"
        assert logged.shutdown() == 0
    finally:
        logged.close()
