"""A thread-safe buffer between the generation worker and the UI's flush timer.

The worker pushes every piece as it arrives; the UI takes everything pending on a timer (50 ms), so a
fast model costs one Markdown append per tick instead of one per token and typing never waits.
"""

from __future__ import annotations

import threading


class TokenBuffer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pieces: list[str] = []
        self.pushed = 0  # pieces the backend produced
        self.taken = 0  # pieces handed to the display

    def push(self, piece: str) -> None:
        with self._lock:
            self._pieces.append(piece)
            self.pushed += 1

    def take(self) -> tuple[str, int]:
        """Everything pending, and how many pieces it was."""
        with self._lock:
            pieces, self._pieces = self._pieces, []
            self.taken += len(pieces)
        return "".join(pieces), len(pieces)
