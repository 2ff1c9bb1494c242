"""Open editor buffers, re-parsed incrementally from "this buffer changed" notifications."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from potion.elixir import Document, SourceAnalysis

log = logging.getLogger(__name__)

# Past this many characters a buffer is not analysed (hover, Elixir completions and code actions skip
# it; AI suggestions still see the text around the cursor): parsing costs ~140 bytes of memory per
# byte of source, so a 24 MB file took 3 GB. 5 MB files are still analysed.
MAX_ANALYSIS_CHARS = 8_000_000


def common_prefix(a: str, b: str) -> int:
    """Length of the common prefix of two strings; slice compares run in C, log2(n) of them."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def text_change(old: str, new: str) -> tuple[int, int, str]:
    """The single edit turning `old` into `new`: (start, old_end, inserted text), as code point offsets."""
    start = common_prefix(old, new)
    tail = common_prefix(old[start:][::-1], new[start:][::-1])
    return start, len(old) - tail, new[start : len(new) - tail]


class OpenBuffer:
    """An editor buffer: its text source and a `potion.elixir.Document` re-parsed incrementally.

    The server only says "this buffer changed"; the edit is recovered by diffing the old and new text
    (one contiguous change per keystroke), so tree-sitter re-parses only around it: ~10x cheaper than
    parsing the file again.
    """

    def __init__(self, text_of: Callable[[], str], path: str | None) -> None:
        self.text_of = text_of
        self.path = path
        self.document: Document | None = None
        self.text = ""
        self.dirty = True
        self.lock = threading.Lock()
        self.refreshing = False
        self.too_big = False

    @property
    def analysis(self) -> SourceAnalysis | None:
        return self.document.analysis if self.document is not None else None

    def refresh(self) -> SourceAnalysis:
        with self.lock:
            if not self.dirty and self.document is not None:
                return self.document.analysis
            self.dirty = False  # before reading: a change arriving meanwhile marks it dirty again
            text = self.text_of()
            if len(text) > MAX_ANALYSIS_CHARS:
                if not self.too_big or self.document is None:
                    log.warning("%s: %d characters, not analysed", self.path, len(text))
                    self.document = Document("", path=self.path, encoding="utf-32")
                self.too_big, self.text = True, ""
                return self.document.analysis
            if self.too_big:  # back under the limit: parse from scratch
                self.too_big, self.document = False, None
            if self.document is None:
                self.document = Document(text, path=self.path, encoding="utf-32")
            elif text != self.text:
                start, end, inserted = text_change(self.text, text)
                if end - start > len(self.text) // 2:
                    self.document.replace(text)  # most of the file changed: parse from scratch
                else:
                    (sl, sc), (el, ec) = _line_col(self.text, start), _line_col(self.text, end)
                    self.document.edit(sl, sc, el, ec, inserted, encoding="utf-32")
            self.text = text
            return self.document.analysis


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset)
    return line, offset - (text.rfind("\n", 0, offset) + 1)
