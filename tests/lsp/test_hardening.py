"""Issue 17 over a raw stdio pipe: JSON-RPC edge cases, lone surrogates, huge files, a damaged telemetry
database. Each of these failed before the fix."""

from __future__ import annotations

import json

import pytest
from lsp_helpers import RawLsp

pytestmark = pytest.mark.timeout(90)

A = "file:///work/lib/a.ex"
B = "file:///work/lib/b.ex"
INLINE_CAPS = {"textDocument": {"inlineCompletion": {}}}
FAKE = {"backend": "fake", "debounceMs": 0, "fake": {"responses": ["GenServer.call(x)"]}}


@pytest.fixture
def logged(home, tmp_path):
    log = tmp_path / "lsp.log"
    peer = RawLsp(home, args=("--log-file", str(log)))
    peer.log = log
    yield peer
    peer.close()


def open_doc(raw: RawLsp, uri: str, text: str) -> None:
    raw.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "elixir", "version": 1, "text": text}},
    )


def inline(raw: RawLsp, uri: str, line: int, character: int) -> dict:
    return raw.call(
        "textDocument/inlineCompletion",
        {
            "textDocument": {"uri": uri},
            "position": {"line": line, "character": character},
            "context": {"triggerKind": 1},
        },
    )


def test_an_id_that_is_no_integer_or_string_gets_invalid_request_with_id_null(logged):
    logged.initialize()
    for bad_id in ({"a": 1}, True, 1.5, [1]):
        logged.send({"id": bad_id, "method": "potion/status", "params": {}})
        reply = logged.response(None)
        assert reply["error"]["code"] == -32600 and reply["id"] is None, bad_id
    assert logged.call("potion/status", {})["result"]["requests"] == 0
    assert logged.shutdown() == 0


def test_a_second_initialize_is_refused_and_open_documents_stay(logged):
    logged.initialize(INLINE_CAPS, FAKE)
    logged.wait_ready()
    open_doc(logged, A, "defmodule A do\n  \nend\n")
    again = logged.call("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    assert again["error"]["code"] == -32600
    items = inline(logged, A, 1, 2)["result"]["items"]
    assert items and items[0]["insertText"] == "GenServer.call(x)"
    assert logged.shutdown() == 0


def test_malformed_messages_log_one_line_each_not_a_traceback(logged):
    logged.initialize()
    logged.send_raw(b'{"jsonrpc": "2.0", "id": 7, "method": ')
    logged.response(None)
    logged.send({"method": "textDocument/didOpen", "params": {"textDocument": 5}})  # a bad notification
    logged.send({"id": 9, "method": "textDocument/hover", "params": {"textDocument": 5}})
    assert logged.response(9)["error"]["code"] == -32602
    assert logged.shutdown() == 0
    text = logged.log.read_text()
    assert "Traceback" not in text and 'File "' not in text, text


def test_a_lone_surrogate_in_one_file_leaves_suggestions_in_another(logged):
    logged.initialize(INLINE_CAPS, FAKE)
    logged.wait_ready()
    # JSON may carry a lone surrogate; the fake backend's tokenizer, like a real one, cannot encode it.
    logged.send_raw(
        json.dumps(
            {
                "jsonrpc": "2.0",
                "method": "textDocument/didOpen",
                "params": {
                    "textDocument": {
                        "uri": B,
                        "languageId": "elixir",
                        "version": 1,
                        "text": 'defmodule B do\n  @x "\ud800"\nend\n',
                    }
                },
            }
        ).encode()
    )
    open_doc(logged, A, "defmodule A do\n  \nend\n")
    items = inline(logged, A, 1, 2)["result"]["items"]
    assert items and items[0]["insertText"] == "GenServer.call(x)"
    assert "generation failed" not in json.dumps(logged.notifications)
    assert logged.shutdown() == 0
