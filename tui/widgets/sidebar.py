"""The list of chats, newest first, with a search box over titles and messages."""

from __future__ import annotations

from collections.abc import Sequence

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option, OptionDoesNotExist

from tui.history import Session
from tui.messages import SessionSelected


class SessionList(OptionList):
    BINDINGS = [
        Binding("delete", "screen.delete_session", "Delete", show=False),
        Binding("n", "screen.new_session", "New", show=False),
        Binding("r", "screen.rename_session", "Rename", show=False),
    ]


class Sidebar(Vertical):
    DEFAULT_CSS = """
    Sidebar { width: 28; dock: left; border-right: vkey $panel-lighten-2; }
    Sidebar > Input { border: none; height: 1; padding: 0 1; }
    Sidebar > SessionList { border: none; height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield Input(placeholder="search chats", id="session-search")
        yield SessionList(id="sessions")

    @property
    def search_text(self) -> str:
        return self.query_one("#session-search", Input).value

    def show(self, sessions: Sequence[Session], current: int | None) -> None:
        """Replace the list, keeping the current chat highlighted."""
        options = self.query_one(SessionList)
        options.clear_options()
        options.add_options([Option(s.title, id=f"s-{s.id}") for s in sessions])
        if current is not None:
            try:
                options.highlighted = options.get_option_index(f"s-{current}")
            except OptionDoesNotExist:  # the current chat is filtered out by the search
                options.highlighted = None

    @on(Input.Changed, "#session-search")
    def _search(self, event: Input.Changed) -> None:
        event.stop()
        self.screen.refresh_sessions()  # type: ignore[attr-defined]

    @on(Input.Submitted, "#session-search")
    def _open_first(self, event: Input.Submitted) -> None:
        event.stop()
        options = self.query_one(SessionList)
        if options.option_count:
            options.focus()
            options.highlighted = 0

    @on(OptionList.OptionSelected, "#sessions")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_id:
            self.post_message(SessionSelected(int(event.option_id[2:])))
