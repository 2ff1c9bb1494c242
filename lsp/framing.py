"""The base protocol's framing of `potion lsp --stdio` input, tolerant of what editors and pipes get wrong.

pygls' reader accepts only an exact `Content-Length: N\\r\\n` line and never re-synchronises: one bad
frame silenced the server for good, and `Content-Length: 1000000000000` killed it. `FrameReader` sits
between stdin and pygls' loop and hands it only well-formed frames:

- header names are case-insensitive and lines end in CRLF or LF; other headers are ignored;
- a Content-Length that is not a number, zero, negative or above `MAX_CONTENT_LENGTH` is rejected with
  one log line, and the reader looks for the next header;
- a header may follow stray bytes on the same line (a too-small Content-Length leaves the rest of its
  body there), so the search for `Content-Length:` runs over the whole line, in bounded pieces;
- past `MAX_GARBAGE` bytes without a valid frame the stream is beyond repair: one error line, and the
  reader reports end of input, so the server exits and the editor restarts it.

A too-small length hands pygls a truncated body, which gets a Parse Error response; the rest is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Awaitable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)

MAX_CONTENT_LENGTH = 128 << 20  # bytes of one message: a 24 MB file as JSON fits
MAX_GARBAGE = 16 << 20  # bytes without a valid frame before the stream counts as beyond repair
LINE_LIMIT = 64 << 10  # header lines are read in pieces of at most this many bytes
_HEADER = re.compile(rb"content-length[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)
_KEEP = len(b"content-length:") + 24  # bytes kept across pieces so a header split between them is found


class FrameReader:
    """Reads frames from a byte stream and presents them to pygls' loop as canonical frames."""

    def __init__(self, stream: BinaryIO, executor: Executor | None = None) -> None:
        self.stream = stream
        self.executor = executor
        self.gave_up = False  # the stream was beyond repair (not just closed)
        self._lines: list[bytes] = []
        self._body = b""

    # -- pygls' AsyncReader interface ----------------------------------------------------------------

    def readline(self) -> Awaitable[bytes]:
        if self._lines:
            return _done(self._lines.pop(0))
        return asyncio.get_running_loop().run_in_executor(self.executor, self._next_header)

    def readexactly(self, n: int) -> Awaitable[bytes]:
        body, self._body = self._body, b""
        return _done(body[:n])

    def _next_header(self) -> bytes:
        body = self.read_frame()
        if body is None:
            return b""
        self._body = body
        self._lines = [b"\r\n"]
        return b"Content-Length: %d\r\n" % len(body)

    # -- framing -------------------------------------------------------------------------------------

    def read_frame(self) -> bytes | None:
        """The next message body, or None at the end of input or when the stream is beyond repair."""
        garbage = 0
        length: int | None = None
        carry = b""
        while True:
            piece = self.stream.readline(LINE_LIMIT)
            if not piece:
                return None
            complete = piece.endswith(b"\n")
            line = carry + piece
            carry = b""
            matches = list(_HEADER.finditer(line))
            if matches and (complete or matches[-1].end() < len(line)):
                found = matches[-1]
                if found.start() > 0 and line[: found.start()].strip():
                    garbage += found.start()
                    log.warning("skipped %d stray bytes before a header", found.start())
                length = self._length(found.group(1))
                if length is None:
                    garbage += len(line)
            elif not complete:
                carry = line[-_KEEP:]  # a header may start at the end of this piece
                garbage += len(line) - len(carry)
                length = None
            elif line.strip() == b"":  # the end of the headers
                if length is not None:
                    body = self.stream.read(length)
                    if len(body) < length:
                        log.error("input ended inside a message (%d of %d bytes)", len(body), length)
                        return None
                    return body
            elif b":" not in line:  # a header without a name: stray text
                garbage += len(line)
                length = None
                log.warning("skipped a line that is no header: %r", line[:80])
            if garbage > MAX_GARBAGE:
                log.error(
                    "stdin is not an LSP stream any more (%d bytes without a valid message): exiting so "
                    "the editor restarts the server",
                    garbage,
                )
                self.gave_up = True
                return None

    @staticmethod
    def _length(raw: bytes) -> int | None:
        text = raw.strip()
        if not text.isdigit():
            log.warning("ignored a message with Content-Length %r (not a length)", text[:40])
            return None
        value = int(text) if len(text) <= 12 else None  # int() of thousands of digits would raise
        if value is None or not 0 < value <= MAX_CONTENT_LENGTH:
            log.warning(
                "ignored a message with Content-Length %s (allowed: 1 to %d)",
                text[:40].decode(errors="replace"),
                MAX_CONTENT_LENGTH,
            )
            return None
        return value


def _done(value: bytes) -> Awaitable[bytes]:
    future = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


class OneLine(logging.Filter):
    """pygls logs each message it cannot handle with a full traceback; one line per message is enough
    (a burst of bad requests filled the log with tracebacks)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage().split("\n", 1)[0]
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text = f"{text}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        record.msg, record.args, record.exc_info, record.exc_text = text, (), None, None
        return True


PYGLS_LOGGERS = ("pygls.io_", "pygls.protocol.json_rpc", "pygls.protocol.language_server", "pygls.server")


def serve_stdio(server: LanguageServer, stdin: BinaryIO, stdout: BinaryIO) -> bool:
    """Run `server` over stdio through a FrameReader, as pygls' `start_io` does with its own reader.

    Returns False when the input stream was beyond repair (the caller exits non-zero)."""
    from pygls.io_ import StdoutWriter, run_async

    for name in PYGLS_LOGGERS:
        logging.getLogger(name).addFilter(OneLine())
    server._stop_event = stop = threading.Event()  # pygls' `shutdown` sets it
    reader = FrameReader(stdin, server.thread_pool)
    server.protocol.set_writer(StdoutWriter(stdout))
    try:
        asyncio.run(
            run_async(
                stop_event=stop,
                reader=reader,
                protocol=server.protocol,
                logger=logging.getLogger("pygls.io_"),
                error_handler=server.report_server_error,
            )
        )
    except BrokenPipeError:
        log.error("the connection to the client is lost: shutting down")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()
    return not reader.gave_up
