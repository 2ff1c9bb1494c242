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
    """VS Code with the LSP 3.18 inline completion capability (vscode-languageclient 9 declares it)."""
    caps = client_capabilities("visual-studio-code")
    caps.text_document.inline_completion = types.InlineCompletionClientCapabilities(
        dynamic_registration=False
    )
    return caps


def neovim_capabilities() -> types.ClientCapabilities:
    """Neovim 0.7 (Debian's): no inline completion, so AI suggestions come as completion items."""
    caps = client_capabilities("neovim@v0.7.0")
    assert caps.text_document.inline_completion is None
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
    env = {**os.environ, "POTION_HOME": str(home)}
    await client.start_io(*SERVER, env=env)
    try:
        await client.initialize_session(
            types.InitializeParams(
                capabilities=capabilities,
                initialization_options=options,
                root_uri=root.as_uri() if root else None,
            )
        )
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
