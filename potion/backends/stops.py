"""Client-side stop sequences for streamed text.

Text that might be the start of a stop sequence is held back until the next piece shows whether it is,
so a stop string split across tokens (`<|file` + `_sep|>`) never leaks to the editor.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopMatcher:
    """Feed streamed pieces; get back the text that is safe to show and whether a stop was hit."""

    def __init__(self, stop: Sequence[str]) -> None:
        self.stop = [s for s in stop if s]
        self._held = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        """The text that can be emitted now. After a stop sequence, `stopped` is set and the rest dropped."""
        if self.stopped:
            return ""
        text = self._held + piece
        cut = min((i for i in (text.find(s) for s in self.stop) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._held = ""
            return text[:cut]
        hold = self._partial_stop_length(text)
        self._held = text[len(text) - hold :] if hold else ""
        return text[: len(text) - hold]

    def flush(self) -> str:
        """The held-back text once the stream has ended without a stop."""
        text, self._held = ("" if self.stopped else self._held), ""
        return text

    def _partial_stop_length(self, text: str) -> int:
        # Longest end of `text` that is a proper start of some stop sequence.
        best = 0
        for s in self.stop:
            for n in range(min(len(s) - 1, len(text)), best, -1):
                if text.endswith(s[:n]):
                    best = n
                    break
        return best
