"""The `backendUrl` setting end to end: `potion lsp` completes through a local OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from lsp_helpers import lsp_session, open_doc, vscode_capabilities, wait_ready
from lsprotocol import types

pytestmark = pytest.mark.timeout(60)

URI = "file:///w/lib/a.ex"
SOURCE = "defmodule A do\n  def increment do\n    \n  end\nend\n"


class FakeOpenAI(BaseHTTPRequestHandler):
    prompts: list[str] = []
    answer = "    GenServer.call(__MODULE__, :increment)\n  end\n"

    def log_message(self, *args) -> None:  # keep the test output clean
        return

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._json(200, {"data": [{"id": "qwen2.5-coder-fake"}]})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/completions":
            self._json(404, {"error": {"message": "not found"}})
            return
        FakeOpenAI.prompts.append(body["prompt"])
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in [self.answer[i : i + 5] for i in range(0, len(self.answer), 5)]:
            chunk = {"choices": [{"text": piece, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture
def openai_server() -> Iterator[str]:
    FakeOpenAI.prompts = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def inline_params() -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI),
        position=types.Position(line=2, character=4),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
    )


async def test_inline_completion_through_backend_url(home, openai_server):
    options = {"backendUrl": openai_server, "debounceMs": 0}
    async with lsp_session(home, capabilities=vscode_capabilities(), options=options) as client:
        await wait_ready(client)
        open_doc(client, URI, SOURCE)
        result = await client.text_document_inline_completion_async(inline_params())
        assert [i.insert_text for i in result.items] == ["GenServer.call(__MODULE__, :increment)"]
        assert len(FakeOpenAI.prompts) == 1
        assert FakeOpenAI.prompts[0].startswith("<|") and "<|fim_middle|>" in FakeOpenAI.prompts[0]


async def test_unreachable_backend_url_is_one_message(home):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = {"backendUrl": f"http://127.0.0.1:{port}", "debounceMs": 0}
    async with lsp_session(home, capabilities=vscode_capabilities(), options=options) as client:
        for _ in range(500):
            if client.messages:
                break
            await asyncio.sleep(0.02)
        assert len(client.messages) == 1 and client.messages[0].type == types.MessageType.Error
        assert f"127.0.0.1:{port}" in client.messages[0].message
        open_doc(client, URI, SOURCE)
        result = await client.text_document_inline_completion_async(inline_params())
        assert list(result.items) == []


async def test_recently_edited_files_go_into_the_prompt(home, openai_server):
    options = {"backendUrl": openai_server, "debounceMs": 0}
    async with lsp_session(home, capabilities=vscode_capabilities(), options=options) as client:
        await wait_ready(client)
        helper = "defmodule Helper do\n  def unique_helper_name(x), do: x * 2\nend\n"
        open_doc(client, "file:///w/lib/helper.ex", helper)
        open_doc(client, URI, SOURCE)
        await client.text_document_inline_completion_async(inline_params())
        prompt = FakeOpenAI.prompts[-1]
        # Qwen's repo-level format: the other file's chunk, then the current file, each after <|file_sep|>.
        assert "unique_helper_name" in prompt
        assert prompt.index("helper.ex") < prompt.index("a.ex") and "<|file_sep|>" in prompt
