"""Issue 17: a model that aborts llama.cpp (a real GGML_ASSERT from a crafted GGUF) kills only the model's
worker process. The server stays up, says so in one message, and hover keeps answering; the next session
does not load the file again."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from lsp_helpers import RawLsp

pytestmark = pytest.mark.timeout(120)

URI = "file:///work/lib/counter.ex"
SOURCE = """defmodule MyApp.Counter do
  def bump(list) do
    helper(list)
  end

  @doc "Helps."
  defp helper(x), do: x
end
"""


def messages(raw: RawLsp) -> list[str]:
    return [n["params"]["message"] for n in raw.notifications if n["method"] == "window/showMessage"]


def wait_message(raw: RawLsp, text: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while not any(text in m for m in messages(raw)):
        assert time.monotonic() < deadline, f"no message with {text!r}: {messages(raw)}"
        assert raw.proc.poll() is None, f"the server exited with {raw.proc.returncode}"
        raw._pump(0.05)
    return next(m for m in messages(raw) if text in m)


def hover_text(raw: RawLsp) -> str:
    reply = raw.call(
        "textDocument/hover", {"textDocument": {"uri": URI}, "position": {"line": 2, "character": 5}}
    )
    assert "error" not in reply, reply
    return reply["result"]["contents"]["value"]


def session(home: Path, model: Path) -> RawLsp:
    raw = RawLsp(home)
    raw.initialize({}, {"model": str(model)})
    raw.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": URI, "languageId": "elixir", "version": 1, "text": SOURCE}},
    )
    return raw


def test_a_model_that_aborts_llama_cpp_leaves_the_server_answering(home: Path, crafted_gguf: Path) -> None:
    raw = session(home, crafted_gguf)
    try:
        message = wait_message(raw, "could not be loaded")
        assert f"crashed (SIGABRT) loading {crafted_gguf}" in message and "GGML_ASSERT(" in message
        assert "hover, Elixir completions and scaffolds still work" in message
        assert "Helps." in hover_text(raw)  # the server survived the abort and answers
        assert raw.call("potion/status", {})["result"]["model_ready"] is False
        assert len(messages(raw)) == 1
        assert raw.shutdown() == 0
    finally:
        raw.close()

    # The next session (the editor restarted the server): the file is not loaded again, one message.
    raw = session(home, crafted_gguf)
    try:
        message = wait_message(raw, "could not be loaded")
        assert "not loading it again" in message and "GGML_ASSERT(" in message
        assert "Helps." in hover_text(raw)
        assert len(messages(raw)) == 1
        assert raw.shutdown() == 0
    finally:
        raw.close()
