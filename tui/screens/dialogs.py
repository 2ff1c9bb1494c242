"""Modal dialogs: confirm (with an optional Markdown preview), ask for a line of text, help."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Markdown

from tui.commands import help_markdown


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no, with `preview` Markdown above the buttons (a scaffold to write, a chat to delete)."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(
        self, question: str, *, preview: str | None = None, yes: str = "Yes", no: str = "No"
    ) -> None:
        super().__init__()
        self.question, self.preview, self.yes, self.no = question, preview, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog -wide" if self.preview else "dialog"):
            yield Label(self.question, id="question")
            if self.preview is not None:
                with VerticalScroll(id="preview"):
                    yield Markdown(self.preview)
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", variant="primary", id="yes")
                yield Button(f"{self.no} (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class AskScreen(ModalScreen[str | None]):
    """One line of text (a new title, a file name); Enter accepts, Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = "") -> None:
        super().__init__()
        self.question, self.value = question, value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question)
            yield Input(self.value, id="answer")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog -wide", id="help"):
            yield Markdown(help_markdown())
