"""Property-based fuzz: random valid-shaped messages never stop the server from answering `shutdown`."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsp_helpers import RawLsp

pytestmark = pytest.mark.timeout(300)

URIS = st.sampled_from(["file:///w/a.ex", "file:///w/b.exs", "untitled:1", "file:///w/%E2%9C%93.ex"])
TEXT = st.lists(
    st.text(max_size=8) | st.sampled_from(["\n", "do", "end", "😀", "\r\n", "\ud800", "  def f do\n"]),
    max_size=12,
).map("".join)
UINT = st.integers(min_value=0, max_value=2**31 - 1) | st.integers(min_value=0, max_value=20)
POSITION = st.fixed_dictionaries({"line": UINT, "character": UINT})
RANGE = st.fixed_dictionaries({"start": POSITION, "end": POSITION})
DOC = st.fixed_dictionaries({"uri": URIS})


def _request(method: str, params) -> st.SearchStrategy:
    return st.tuples(st.just(method), params, st.just(True))


def _notification(method: str, params) -> st.SearchStrategy:
    return st.tuples(st.just(method), params, st.just(False))


MESSAGES = st.one_of(
    _notification(
        "textDocument/didOpen",
        st.fixed_dictionaries(
            {
                "textDocument": st.fixed_dictionaries(
                    {"uri": URIS, "languageId": st.just("elixir"), "version": UINT, "text": TEXT}
                )
            }
        ),
    ),
    _notification(
        "textDocument/didChange",
        st.fixed_dictionaries(
            {
                "textDocument": st.fixed_dictionaries({"uri": URIS, "version": UINT}),
                "contentChanges": st.lists(
                    st.fixed_dictionaries({"range": RANGE, "text": TEXT})
                    | st.fixed_dictionaries({"text": TEXT}),
                    max_size=3,
                ),
            }
        ),
    ),
    _notification("textDocument/didClose", st.fixed_dictionaries({"textDocument": DOC})),
    _notification("$/cancelRequest", st.fixed_dictionaries({"id": UINT})),
    _notification(
        "workspace/didChangeConfiguration",
        st.fixed_dictionaries(
            {
                "settings": st.dictionaries(
                    st.sampled_from(["debounceMs", "maxTokens", "hover", "inlineCompletion", "junk"]),
                    st.integers(-5, 500) | st.booleans() | TEXT,
                    max_size=3,
                )
            }
        ),
    ),
    _request(
        "textDocument/inlineCompletion",
        st.fixed_dictionaries(
            {
                "textDocument": DOC,
                "position": POSITION,
                "context": st.fixed_dictionaries({"triggerKind": st.sampled_from([1, 2])}),
            }
        ),
    ),
    _request("textDocument/completion", st.fixed_dictionaries({"textDocument": DOC, "position": POSITION})),
    _request("textDocument/hover", st.fixed_dictionaries({"textDocument": DOC, "position": POSITION})),
    _request(
        "textDocument/codeAction",
        st.fixed_dictionaries(
            {
                "textDocument": DOC,
                "range": RANGE,
                "context": st.fixed_dictionaries({"diagnostics": st.just([])}),
            }
        ),
    ),
    _request(
        "workspace/executeCommand",
        st.fixed_dictionaries(
            {
                "command": st.sampled_from(["potion.accepted", "potion.newModule", "potion.addImpl", "nope"]),
                "arguments": st.lists(TEXT | UINT, max_size=3),
            }
        ),
    ),
    _request("potion/" + "random", st.just({})),
)


def test_random_messages_never_stop_shutdown(home):
    raw = RawLsp(home)
    try:
        raw.initialize(
            {"textDocument": {"inlineCompletion": {}}},
            {"backend": "fake", "debounceMs": 0, "fake": {"responses": ["x = 1\n  end", "foo()"]}},
        )
        raw.wait_ready()

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.lists(MESSAGES, min_size=1, max_size=12))
        def run(messages):
            pending = []
            for method, params, is_request in messages:
                if is_request:
                    pending.append(raw.request(method, params))
                else:
                    raw.notify(method, params)
            for msg_id in pending:
                reply = raw.response(msg_id)
                assert "result" in reply or reply["error"]["code"] in (-32600, -32601, -32602, -32603, -32800)
            assert raw.proc.poll() is None

        run()
        assert raw.shutdown() == 0
    finally:
        raw.close()
