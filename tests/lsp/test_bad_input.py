"""Bad input over a raw stdio pipe: the server answers what the protocol wants and keeps serving."""

from __future__ import annotations

import pytest
from lsp_helpers import RawLsp

pytestmark = pytest.mark.timeout(120)

URI = "file:///work/lib/a.ex"
INLINE_CAPS = {"textDocument": {"inlineCompletion": {}}}


def fake(responses=("x = 1",), **extra):
    return {"backend": "fake", "debounceMs": 0, "fake": {"responses": list(responses), **extra}}


@pytest.fixture
def raw(home):
    peer = RawLsp(home)
    yield peer
    peer.close()


def inline(raw: RawLsp, line: int, character: int, uri: str = URI) -> dict:
    return raw.call(
        "textDocument/inlineCompletion",
        {
            "textDocument": {"uri": uri},
            "position": {"line": line, "character": character},
            "context": {"triggerKind": 1},
        },
    )


def open_doc(raw: RawLsp, text: str, uri: str = URI) -> None:
    raw.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "elixir", "version": 1, "text": text}},
    )


def test_malformed_json_gets_a_parse_error_and_the_server_goes_on(raw):
    raw.initialize()
    raw.send_raw(b'{"jsonrpc": "2.0", "id": 7, "method": ')
    assert raw.response(None)["error"]["code"] == -32700
    raw.send_raw(b"\xff\xfe not utf-8 \x80")
    assert raw.response(None)["error"]["code"] == -32700
    raw.send_raw(b"[1, 2, 3]")
    assert raw.response(None)["error"]["code"] == -32600
    raw.send_raw(b'{"jsonrpc": "1.0", "id": 41, "method": "shutdown"}')
    assert raw.response(41)["error"]["code"] == -32600
    raw.send_raw(b'{"id": 42, "method": "shutdown"}')
    assert raw.response(42)["error"]["code"] == -32600
    raw.proc.stdin.write(b"X-Garbage: yes\r\nnot a header at all\r\n\r\n")  # no Content-Length: skipped
    assert raw.call("potion/status", {})["result"]["requests"] == 0
    assert raw.shutdown() == 0


def test_unknown_method_and_invalid_params_get_error_responses(raw):
    raw.initialize()
    assert raw.call("potion/noSuchThing", {})["error"]["code"] == -32601
    reply = raw.call("textDocument/completion", {"textDocument": {"uri": URI}})  # no position
    assert reply["error"]["code"] == -32602
    raw.notify("potion/unknownNotification", {"x": 1})  # notifications get no answer, and no crash
    assert raw.call("potion/status", {})["result"]["model_ready"] in (True, False)
    assert raw.shutdown() == 0


def test_positions_past_the_end_and_surrogate_pairs(raw):
    raw.initialize(INLINE_CAPS, fake(["GenServer.call(x)"]))
    raw.wait_ready()
    open_doc(raw, 'defmodule A do\n  @emoji "😀😀"\n  \nend')
    for line, character in [(2, 2), (2, 999), (999, 0), (999, 999), (1, 11), (1, 12), (1, 13)]:
        reply = inline(raw, line, character)
        assert "error" not in reply, (line, character, reply)
    # A position inside the emoji's surrogate pair resolves to a whole character, never half of one.
    reply = inline(raw, 1, 11)
    assert all("\ud83d" not in i["insertText"] for i in reply["result"]["items"])
    assert raw.shutdown() == 0


def test_did_change_for_a_document_never_opened_is_ignored(raw):
    raw.initialize(INLINE_CAPS, fake())
    raw.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": "file:///never.ex", "version": 2},
            "contentChanges": [
                {
                    "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
                    "text": "x",
                }
            ],
        },
    )
    assert inline(raw, 0, 1, uri="file:///never.ex")["result"]["items"] == []
    assert not [n for n in raw.notifications if n["method"] == "window/showMessage"]
    assert raw.shutdown() == 0


def test_a_5mb_file(raw):
    raw.initialize(INLINE_CAPS, fake(["x = 1"]))
    raw.wait_ready()
    body = "".join(f"  def f{i}(x), do: x + {i}\n" for i in range(5 * 1024 * 1024 // 30))
    text = "defmodule Big do\n" + body + "  \nend\n"
    assert len(text) > 5 * 1024 * 1024
    open_doc(raw, text)
    last = text.count("\n") - 1
    reply = inline(raw, last, 2)
    assert reply["result"]["items"][0]["insertText"] == "x = 1"
    raw.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": URI, "version": 2},
            "contentChanges": [
                {
                    "range": {"start": {"line": last, "character": 2}, "end": {"line": last, "character": 2}},
                    "text": "y",
                }
            ],
        },
    )
    assert "error" not in inline(raw, last, 3)
    assert raw.shutdown() == 0


def test_a_burst_of_1000_cancelled_requests_returns_memory(raw):
    raw.initialize(INLINE_CAPS, {**fake(["x = 1"]), "debounceMs": 150})
    raw.wait_ready()
    open_doc(raw, "defmodule A do\n  \nend\n")
    inline(raw, 0, 14)  # warm up every code path once (elsewhere: the burst must not hit the cache)
    baseline = raw.rss_kb()
    ids = []
    for _ in range(1000):
        msg_id = raw.request(
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": URI},
                "position": {"line": 1, "character": 2},
                "context": {"triggerKind": 2},
            },
        )
        raw.notify("$/cancelRequest", {"id": msg_id})
        ids.append(msg_id)
    answers = [raw.response(i) for i in ids]
    cancelled = [a for a in answers if a.get("error", {}).get("code") == -32800]
    assert len(cancelled) >= 900  # a few may finish before their cancel arrives; all are answered
    assert all("result" in a or "error" in a for a in answers)
    status = raw.call("potion/status", {})["result"]
    assert status["generations"] <= 2
    grown = raw.rss_kb() - baseline
    assert grown < 20 * 1024, f"server grew by {grown} kB after the burst"
    assert raw.shutdown() == 0
