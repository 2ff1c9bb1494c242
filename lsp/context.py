"""Extra context for completions: a ring buffer of chunks from other open or recently edited files.

Like llama.vim's ring buffer: when a file is opened or edited, the lines around the edit are remembered;
a completion in another file gets the most recent chunks as extra files in its prompt, so the model sees
the module the user was just working on (its function names, its struct fields).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from urllib.parse import unquote, urlparse


@dataclass(frozen=True)
class Chunk:
    uri: str
    start_line: int
    end_line: int  # exclusive
    text: str


def uri_path(uri: str) -> str:
    """A readable path for a document URI (the prompt's file separator names it)."""
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


def lines_around(source: str, line: int, n_lines: int) -> tuple[int, int, str]:
    """The `n_lines` lines of `source` centred on `line`, without splitting the whole source."""
    start = max(0, line - n_lines // 2)
    pos = 0
    for _ in range(start):
        nxt = source.find("\n", pos)
        if nxt < 0:
            break
        pos = nxt + 1
    end = pos
    taken = 0
    while taken < n_lines and end < len(source):
        nxt = source.find("\n", end)
        end = len(source) if nxt < 0 else nxt + 1
        taken += 1
    return start, start + taken, source[pos:end]


class RecentChunks:
    """The last `max_chunks` chunks of `chunk_lines` lines, newest last; thread-safe."""

    def __init__(self, max_chunks: int = 16, chunk_lines: int = 32) -> None:
        self.max_chunks = max_chunks
        self.chunk_lines = chunk_lines
        self._chunks: deque[Chunk] = deque()
        self._lock = threading.Lock()

    def note(self, uri: str, source: str, line: int) -> None:
        """Remember the lines of `source` around `line` (replacing an overlapping chunk of that file)."""
        start, end, text = lines_around(source, line, self.chunk_lines)
        if not text.strip():
            return
        chunk = Chunk(uri, start, end, text)
        with self._lock:
            kept = [c for c in self._chunks if c.uri != uri or c.end_line <= start or c.start_line >= end]
            kept.append(chunk)
            self._chunks = deque(kept[-self.max_chunks :])

    def forget(self, uri: str) -> None:
        with self._lock:
            self._chunks = deque(c for c in self._chunks if c.uri != uri)

    def chunks(self) -> list[Chunk]:
        with self._lock:
            return list(self._chunks)

    def extra_files(self, exclude_uri: str, *, max_chars: int) -> list[tuple[str, str]]:
        """(path, text) pairs of other files' chunks, newest first, within `max_chars` in total."""
        out: list[tuple[str, str]] = []
        used = 0
        for chunk in reversed(self.chunks()):
            if chunk.uri == exclude_uri:
                continue
            if used + len(chunk.text) > max_chars:
                break
            out.append((uri_path(chunk.uri), chunk.text))
            used += len(chunk.text)
        return out
