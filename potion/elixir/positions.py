"""Line/column conversions between byte offsets and LSP positions.

Tree-sitter counts bytes; LSP clients count UTF-16 code units by default (or bytes / code points when
negotiated). A `LineIndex` over the raw bytes of a document converts both ways. Bytes that are not valid
UTF-8 count as one unit each in every encoding, so a broken file still maps every offset somewhere.
"""

from __future__ import annotations

import bisect
from typing import Literal

Encoding = Literal["utf-16", "utf-8", "utf-32"]
ENCODINGS: tuple[str, ...] = ("utf-16", "utf-8", "utf-32")


def check_encoding(encoding: str) -> None:
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown position encoding {encoding!r}: use one of {', '.join(ENCODINGS)}")


def _units(ch: str, encoding: str) -> int:
    """Width of one decoded character in `encoding` (surrogate-escaped bad bytes count as 1)."""
    cp = ord(ch)
    if 0xDC80 <= cp <= 0xDCFF:  # an undecodable byte, see surrogateescape
        return 1
    if encoding == "utf-16":
        return 2 if cp > 0xFFFF else 1
    if encoding == "utf-8":
        return len(ch.encode("utf-8"))
    return 1


class LineIndex:
    """Byte offsets of line starts in a UTF-8 (or almost UTF-8) buffer."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        starts = [0]
        find = data.find
        pos = find(b"\n")
        while pos != -1:
            starts.append(pos + 1)
            pos = find(b"\n", pos + 1)
        self.starts = starts

    def line_bytes(self, line: int) -> bytes:
        """The bytes of `line` without its line terminator (`\\n` or `\\r\\n`)."""
        start = self.starts[line]
        end = self.starts[line + 1] - 1 if line + 1 < len(self.starts) else len(self.data)
        raw = self.data[start:end]
        return raw[:-1] if raw.endswith(b"\r") else raw

    def offset(self, line: int, character: int, encoding: str = "utf-16") -> int:
        """Byte offset of an LSP position; out-of-range positions clamp to the line or document end."""
        check_encoding(encoding)
        if line < 0:
            return 0
        if line >= len(self.starts):
            return len(self.data)
        raw = self.line_bytes(line)
        start = self.starts[line]
        if character <= 0:
            return start
        if encoding == "utf-8" or raw.isascii():
            return start + min(character, len(raw))
        units = 0
        consumed = 0
        for ch in raw.decode("utf-8", "surrogateescape"):
            if units >= character:
                break
            units += _units(ch, encoding)
            consumed += _units(ch, "utf-8")
        return start + consumed

    def position(self, offset: int, encoding: str = "utf-16") -> tuple[int, int]:
        """LSP (line, character) of a byte offset; an offset inside a character maps to its start."""
        check_encoding(encoding)
        offset = max(0, min(offset, len(self.data)))
        line = bisect.bisect_right(self.starts, offset) - 1
        # Back off to the first byte of a character the offset falls inside (continuation bytes 10xxxxxx).
        while offset > self.starts[line] and offset < len(self.data) and self.data[offset] & 0xC0 == 0x80:
            offset -= 1
        return line, self.column(line, offset - self.starts[line], encoding)

    def column(self, line: int, byte_column: int, encoding: str = "utf-16") -> int:
        """Convert a byte column on `line` (tree-sitter's point column) to `encoding` units."""
        if encoding == "utf-8" or byte_column <= 0:
            return max(0, byte_column)
        start = self.starts[line] if line < len(self.starts) else len(self.data)
        prefix = self.data[start : start + byte_column]
        if prefix.isascii():
            return len(prefix)
        return sum(_units(ch, encoding) for ch in prefix.decode("utf-8", "surrogateescape"))
