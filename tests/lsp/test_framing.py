"""Framing of stdin (issue 17): bad frames are skipped, the server re-synchronises on the next valid header,
and a stream beyond repair ends the server with one clear log line so the editor restarts it."""

from __future__ import annotations

import io
import json
import os
import subprocess

import pytest
from lsp_helpers import SERVER, RawLsp

from lsp.framing import MAX_GARBAGE, FrameReader

pytestmark = pytest.mark.timeout(60)


def body(msg_id: int) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": "potion/status", "params": {}}).encode()


def frames(stream: bytes) -> list[bytes]:
    reader = FrameReader(io.BufferedReader(io.BytesIO(stream)))
    out = []
    while (frame := reader.read_frame()) is not None:
        out.append(frame)
    return out


def test_headers_in_any_case_with_lf_or_crlf_and_other_headers():
    stream = (
        b"content-length: 2\n\n{}"
        + b"CONTENT-LENGTH:3\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n[1]"
    )
    assert frames(stream) == [b"{}", b"[1]"]


@pytest.mark.parametrize(
    "bad",
    [
        b"Content-Length: 0\r\n\r\n",
        b"Content-Length: -5\r\n\r\n",
        b"Content-Length: twelve\r\n\r\n",
        b"Content-Length: 1000000000000\r\n\r\n",
        b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n",
        b"stray bytes without a newline",
        b"\x00\xff" * 100_000,  # long garbage, read in pieces
        b"Content-Length: 2\r\nnot a header\r\n\r\n",  # a valid length spoiled by a stray line
    ],
    ids=["zero", "negative", "word", "huge", "5000 digits", "stray", "long garbage", "stray line"],
)
def test_a_bad_frame_is_skipped_and_the_next_one_read(bad):
    assert frames(bad + b"Content-Length: 2\r\n\r\n{}") == [b"{}"]


def test_too_small_a_length_cuts_one_body_and_the_next_frame_is_found():
    assert frames(b"Content-Length: 3\r\n\r\n" + body(1) + b"Content-Length: 2\r\n\r\n{}") == [
        body(1)[:3],
        b"{}",
    ]


def test_garbage_frames_then_a_valid_request_is_answered(home):
    raw = RawLsp(home)
    try:
        raw.initialize()
        raw.proc.stdin.write(b"content-length: %d\n\n" % len(body(101)) + body(101))  # lowercase, LF
        raw.proc.stdin.flush()
        assert raw.response(101)["result"]["requests"] == 0
        for bad in (
            b"Content-Length: 0\r\n\r\n",
            b"Content-Length: -5\r\n\r\n",
            b"Content-Length: twelve\r\n\r\n",
            b"Content-Length: 1000000000000\r\n\r\n",
            b"stray bytes without a newline",
        ):
            raw.proc.stdin.write(bad)
        raw.proc.stdin.write(b"Content-Length: 3\r\n\r\n" + body(102))  # too small: a cut body
        raw.send_raw(body(103))
        assert raw.response(None)["error"]["code"] == -32700  # the cut body: a Parse Error
        assert raw.response(103)["result"]["requests"] == 0
        assert raw.shutdown() == 0
    finally:
        raw.close()


def test_a_stream_beyond_repair_ends_the_server_with_one_log_line(tmp_path, home):
    log = tmp_path / "lsp.log"
    done = subprocess.run(
        [*SERVER, "--log-file", str(log)],
        input=b"\x00garbage" * (MAX_GARBAGE // 8 + 1024) + b"Content-Length: 2\r\n\r\n{}",
        capture_output=True,
        timeout=50,
        env={**os.environ, "POTION_HOME": str(home)},
    )
    assert done.returncode == 1
    text = log.read_text()
    assert "not an LSP stream any more" in text and "editor restarts the server" in text
    assert "Traceback" not in text
