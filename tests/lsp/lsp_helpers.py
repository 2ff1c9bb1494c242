"""Helpers for the tests of tests/lsp: drive `python -m lsp --stdio` with pytest-lsp's client and the
capabilities of real clients."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

SERVER = [sys.executable, "-m", "lsp", "--stdio"]


def vscode_capabilities() -> types.ClientCapabilities:
    """VS Code with vscode-languageclient 9.0.1 and its proposed features on (`registerProposedFeatures`,
    as editors/vscode does): its InlineCompletionItemFeature declares `textDocument.inlineCompletion`
    with `dynamicRegistration: true`."""
    caps = client_capabilities("visual-studio-code")
    caps.text_document.inline_completion = types.InlineCompletionClientCapabilities(dynamic_registration=True)
    return caps


def neovim_capabilities() -> types.ClientCapabilities:
    """Neovim 0.7 (Debian's): no inline completion, so AI suggestions come as completion items."""
    caps = client_capabilities("neovim@v0.7.0")
    assert caps.text_document.inline_completion is None
    return caps


def neovim_012_capabilities() -> types.ClientCapabilities:
    """Neovim 0.12: 0.11's capabilities plus `textDocument.inlineCompletion = { dynamicRegistration =
    false }`, as its `vim.lsp.protocol.make_client_capabilities()` declares it."""
    caps = client_capabilities("neovim@v0.11.0")
    assert caps.text_document.inline_completion is None
    caps.text_document.inline_completion = types.InlineCompletionClientCapabilities(
        dynamic_registration=False
    )
    return caps


def fake_options(responses: list[str], **fake: Any) -> dict[str, Any]:
    return {"backend": "fake", "debounceMs": 0, "fake": {"responses": responses, **fake}}


@contextlib.asynccontextmanager
async def lsp_session(
    home: Path,
    *,
    capabilities: types.ClientCapabilities,
    options: dict[str, Any] | None = None,
    root: Path | None = None,
) -> AsyncIterator[LanguageClient]:
    client = make_test_lsp_client()
    registrations: list[types.Registration] = []

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register_capability(params: types.RegistrationParams) -> None:
        registrations.extend(params.registrations)

    env = {**os.environ, "POTION_HOME": str(home)}
    await client.start_io(*SERVER, env=env)
    try:
        result = await client.initialize_session(
            types.InitializeParams(
                capabilities=capabilities,
                initialization_options=options,
                root_uri=root.as_uri() if root else None,
            )
        )
        # For the tests: what the server advertised in `initialize` and registered afterwards.
        client.initialize_result = result
        client.registrations = registrations
        yield client
        await asyncio.wait_for(client.shutdown_session(), 20)
    finally:
        server = client._server
        if server is not None and server.returncode is None:
            server.kill()  # a failed test left it running: do not wait for an exit that never comes
        await client.stop()


async def status(client: LanguageClient) -> dict[str, Any]:
    result = await client.protocol.send_request_async("potion/status", {})
    return result if isinstance(result, dict) else result._asdict()


async def wait_ready(client: LanguageClient, timeout: float = 20.0) -> dict[str, Any]:
    """Poll `potion/status` until the model is ready (loading happens on a background thread)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = await status(client)
        if state["model_ready"]:
            return state
        await asyncio.sleep(0.02)
    raise AssertionError("the model never became ready")


def open_doc(client: LanguageClient, uri: str, text: str, version: int = 1) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="elixir", version=version, text=text)
        )
    )


class RawLsp:
    """A bare JSON-RPC peer over the server's stdio pipes, for input a well-behaved client never sends."""

    def __init__(self, home: Path, *, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        import queue
        import subprocess
        import threading

        self.proc = subprocess.Popen(
            [*SERVER, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "POTION_HOME": str(home), **(env or {})},
        )
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.responses: dict[Any, dict[str, Any]] = {}
        self.notifications: list[dict[str, Any]] = []
        self._next_id = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        import json

        stream = self.proc.stdout
        while True:
            length = 0
            while True:
                line = stream.readline()
                if not line:
                    return
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                if line in (b"\r\n", b"\n"):
                    break
            self.messages.put(json.loads(stream.read(length)))

    def send_raw(self, body: bytes) -> None:
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        import json

        self.send_raw(json.dumps({"jsonrpc": "2.0", **message}).encode())

    def request(self, method: str, params: Any = None) -> int:
        self._next_id += 1
        self.send({"id": self._next_id, "method": method, "params": params})
        return self._next_id

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"method": method, "params": params})

    def _pump(self, timeout: float) -> None:
        import queue

        try:
            message = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        if "method" in message and "id" in message:  # a request from the server: answer it
            self.send({"id": message["id"], "result": None})
        elif "method" in message:
            self.notifications.append(message)
        else:
            self.responses[message.get("id")] = message

    def response(self, msg_id: Any, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while msg_id not in self.responses:
            assert time.monotonic() < deadline, f"no response to {msg_id!r}"
            assert self.proc.poll() is None, f"server exited with {self.proc.returncode}"
            self._pump(0.1)
        return self.responses.pop(msg_id)

    def call(self, method: str, params: Any = None, timeout: float = 20.0) -> dict[str, Any]:
        return self.response(self.request(method, params), timeout)

    def initialize(self, capabilities: dict[str, Any] | None = None, options: Any = None) -> dict[str, Any]:
        result = self.call(
            "initialize",
            {
                "processId": None,
                "rootUri": None,
                "capabilities": capabilities or {},
                "initializationOptions": options,
            },
        )
        self.notify("initialized", {})
        return result

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.call("potion/status", {})["result"]["model_ready"]:
            assert time.monotonic() < deadline, "the model never became ready"
            self._pump(0.02)

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def shutdown(self, timeout: float = 20.0) -> int:
        reply = self.call("shutdown", None, timeout)
        assert "error" not in reply, reply
        self.notify("exit", None)
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
