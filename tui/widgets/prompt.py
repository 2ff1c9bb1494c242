"""The message box: multi-line, Enter sends, pastes beyond a size limit are refused up front."""

from __future__ import annotations

from textual import events
from textual.widgets import TextArea

from tui.context import MAX_PASTE_CHARS
from tui.messages import PromptSubmitted


class PromptInput(TextArea):
    """A TextArea where Enter sends and shift+enter / ctrl+j insert a newline."""

    DEFAULT_CSS = """
    PromptInput { height: auto; min-height: 3; max-height: 10; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
        self.placeholder = "Ask about Elixir, or /help"

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.prevent_default()
            event.stop()
            self.post_message(PromptSubmitted(self.text))
            return
        if event.key in ("shift+enter", "ctrl+j"):
            event.prevent_default()
            event.stop()
            self.insert("\n")
            return
        await super()._on_key(event)

    async def _on_paste(self, event: events.Paste) -> None:
        # A megabyte in a TextArea makes every keystroke slow and can never fit the model's context;
        # refuse it before it is inserted, and say what to do instead.
        if len(event.text) > MAX_PASTE_CHARS:
            event.prevent_default()
            event.stop()
            self.app.notify(
                f"Paste of {len(event.text) / 1024:.0f} KB refused: "
                f"the limit is {MAX_PASTE_CHARS // 1000} KB. "
                "Save it to a file and use /file or /explain PATH:LINE.",
                title="Paste too large",
                severity="error",
            )
