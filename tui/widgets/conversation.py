"""The conversation: one MessageView per message, streamed answers appended as Markdown."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Markdown, Static
from textual.widgets._markdown import MarkdownFence

from tui.codeblocks import CodeBlock, code_blocks
from tui.history import StoredMessage

_TITLES = {"user": "You", "assistant": "Potion", "context": "Attached", "info": "Potion", "error": "Error"}


class MessageView(Vertical, can_focus=True):
    """A message. Focus it (tab) to pick one of its code blocks with [ and ], then copy or save it."""

    BINDINGS = [
        Binding("right_square_bracket", "next_block", "Next code", show=False),
        Binding("left_square_bracket", "previous_block", "Previous code", show=False),
        Binding("y", "screen.copy_code", "Copy code"),
        Binding("s", "screen.save_code", "Save code"),
    ]

    def __init__(
        self, role: str, content: str = "", *, status: str = "complete", note: str = "", message_id: int = 0
    ) -> None:
        super().__init__(classes=f"message -{role}")
        self.role = role
        self.content = content
        self.status = status
        self.note = note
        self.message_id = message_id
        self.selected_block = -1  # -1: the last block
        self.border_title = _TITLES.get(role, role)

    def compose(self) -> ComposeResult:
        if self.role == "context":
            yield Static(self.note, classes="attachment", markup=False)
        else:
            yield Markdown(self.content)

    def on_mount(self) -> None:
        self._refresh_subtitle()

    @property
    def markdown(self) -> Markdown:
        return self.query_one(Markdown)

    async def append(self, text: str) -> None:
        self.content += text
        await self.markdown.append(text)

    async def finish(self, content: str, status: str, note: str = "") -> None:
        """Re-render the whole answer once it is complete (streamed appends may have split blocks)."""
        self.content, self.status, self.note = content, status, note
        if status == "interrupted":
            self.add_class("-interrupted")
        elif status == "error":
            self.add_class("-failed")
        await self.markdown.update(content or "_(no answer)_")
        self._refresh_subtitle()

    def _refresh_subtitle(self) -> None:
        parts = []
        if self.status == "interrupted":
            parts.append("⏹ interrupted")
        elif self.status == "error":
            parts.append("✖ failed")
        if self.note and self.role != "context":
            parts.append(self.note)
        blocks = self.blocks()
        if blocks and self.has_focus:
            parts.append(f"code {self._index(blocks) + 1}/{len(blocks)} · [ ] pick · y copy · s save")
        self.border_subtitle = " · ".join(parts)

    # -- code blocks ---------------------------------------------------------------------------------

    def blocks(self) -> list[CodeBlock]:
        return code_blocks(self.content) if self.role in ("assistant", "user") else []

    def _index(self, blocks: list[CodeBlock]) -> int:
        return self.selected_block if 0 <= self.selected_block < len(blocks) else len(blocks) - 1

    def selected(self) -> tuple[int, CodeBlock] | None:
        blocks = self.blocks()
        if not blocks:
            return None
        index = self._index(blocks)
        return index, blocks[index]

    def _select(self, step: int) -> None:
        blocks = self.blocks()
        if not blocks:
            self.app.bell()
            return
        self.selected_block = (self._index(blocks) + step) % len(blocks)
        fences = list(self.query(MarkdownFence))
        for i, fence in enumerate(fences):
            fence.set_class(i == self.selected_block, "-selected")
        if 0 <= self.selected_block < len(fences):
            fences[self.selected_block].scroll_visible()
        self._refresh_subtitle()

    def action_next_block(self) -> None:
        self._select(1)

    def action_previous_block(self) -> None:
        self._select(-1)

    def on_focus(self) -> None:
        self._refresh_subtitle()

    def on_blur(self) -> None:
        self._refresh_subtitle()


class Conversation(VerticalScroll, can_focus=False):
    """The scrolling list of messages; stays pinned to the bottom while an answer streams."""

    def messages(self) -> list[MessageView]:
        return list(self.query(MessageView))

    def last_with_code(self) -> MessageView | None:
        for view in reversed(self.messages()):
            if view.blocks():
                return view
        return None


def view_for(message: StoredMessage) -> MessageView:
    if message.role == "context":
        note = f"📎 {message.meta.get('path', 'file')} · {message.meta.get('tokens', '?')} tokens"
        return MessageView("context", message.content, note=note, message_id=message.id)
    note = ""
    if message.role == "assistant" and message.meta.get("tokens"):
        note = f"{message.meta['tokens']} tokens"
    content = message.content
    if message.meta.get("error"):
        content += f"\n\n> **Error:** {message.meta['error']}"
    view = MessageView(message.role, content, status=message.status, note=note, message_id=message.id)
    if message.status == "interrupted":
        view.add_class("-interrupted")
    elif message.status == "error":
        view.add_class("-failed")
    return view
