"""The status line: model, its state, tokens/s and how much of the context the chat uses."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: 1; width: 1fr; background: $panel; color: $text-muted; padding: 0 1; }
    """

    model: reactive[str] = reactive("")
    state: reactive[str] = reactive("")
    tokens_per_s: reactive[float] = reactive(0.0)
    context_used: reactive[int] = reactive(0)
    context_size: reactive[int] = reactive(0)

    def render(self) -> str:
        parts = [self.model or "no model"]
        if self.state:
            parts.append(self.state)
        if self.tokens_per_s:
            parts.append(f"{self.tokens_per_s:.1f} tok/s")
        if self.context_size:
            parts.append(f"ctx {self.context_used}/{self.context_size}")
        return " · ".join(parts)
