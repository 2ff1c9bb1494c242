"""The chat screen: chat list, conversation, message box, status line.

Generation runs in a thread worker; pieces go through a TokenBuffer that a 50 ms timer flushes into the
answer's Markdown, and the final answer is re-rendered whole. The question is saved before the model is
asked and the answer when it ends, so a crash loses at most the answer in flight.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Markdown

from potion.errors import PotionError
from tui.codeblocks import suggested_filename
from tui.commands import is_command
from tui.context import chat_messages, fit_messages
from tui.errors import InputTooLarge
from tui.history import Session, StoredMessage, session_title
from tui.messages import GenerationFinished, PromptSubmitted, SessionSelected
from tui.screens.dialogs import AskScreen, ConfirmScreen, HelpScreen
from tui.screens.slash import SlashCommands
from tui.stream import TokenBuffer
from tui.widgets.conversation import Conversation, MessageView, view_for
from tui.widgets.prompt import PromptInput
from tui.widgets.sidebar import Sidebar
from tui.widgets.status import StatusBar

WELCOME = (
    "**Potion** — a local assistant for Elixir and OTP.\n\n"
    "Ask a question, or try `/explain lib/my_app/worker.ex:12`, `/file PATH`, "
    "`/scaffold GenServer MyApp.Worker`. `/help` lists everything."
)


class ChatScreen(SlashCommands, Screen[None]):
    BINDINGS = [
        Binding("escape", "cancel", "Stop", priority=True),
        Binding("ctrl+n", "new_session", "New"),
        Binding("f2", "rename_session", "Rename"),
        Binding("f8", "delete_session", "Delete", show=False),
        Binding("ctrl+f", "search", "Search", show=False),
        Binding("ctrl+b", "toggle_sidebar", "Chats"),
        Binding("ctrl+o", "copy_code", "Copy code"),
        Binding("ctrl+s", "save_code", "Save code"),
        Binding("f1", "help", "Help"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.session: Session | None = None
        self.history: list[StoredMessage] = []
        self.pending_system: str | None = None  # /system before the first message creates the chat
        self.generation = 0
        self.generating = False
        self.buffer = TokenBuffer()
        self._cancel: threading.Event | None = None
        self._answer: MessageView | None = None
        self._flush_timer: Timer | None = None
        self.displayed_tokens = 0
        self.worker_idle = threading.Event()  # clear while a generation thread runs
        self.worker_idle.set()

    def compose(self) -> ComposeResult:
        yield Sidebar(id="sidebar")
        with Vertical(id="main"):
            yield Conversation(id="conversation")
            yield PromptInput(id="prompt")
            yield StatusBar(id="status")
        yield Footer()

    async def on_mount(self) -> None:
        # An 80-column terminal has no room for the chat list; ctrl+b shows it.
        self.query_one(Sidebar).display = self.app.size.width >= 100
        self.refresh_sessions()
        # The latest chat, unless another Potion chat is writing it: two chats never share a session.
        latest = self.store.resumable()
        if latest is not None:
            await self.open_session(latest.id)
        else:
            await self._show_welcome()
        self.prompt.focus()

    # -- shortcuts ------------------------------------------------------------------------------------

    @property
    def store(self):  # noqa: ANN201 - HistoryStore; the app opens it before pushing this screen
        return self.app.store

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

    @property
    def conversation(self) -> Conversation:
        return self.query_one(Conversation)

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    def model_state(self, name: str, state: str, *, n_ctx: int | None = None) -> None:
        self.status.model, self.status.state = name, state
        if n_ctx:
            self.status.context_size = n_ctx

    def error(self, exc: PotionError | str, title: str = "Error") -> None:
        text = exc.user_message() if isinstance(exc, PotionError) else exc
        self.app.notify(text, title=title, severity="error", timeout=10)

    # -- sessions -------------------------------------------------------------------------------------

    def refresh_sessions(self) -> None:
        sidebar = self.query_one(Sidebar)
        sidebar.show(self.store.search(sidebar.search_text), self.session.id if self.session else None)

    async def _show_welcome(self) -> None:
        await self.conversation.remove_children()
        await self.conversation.mount(Markdown(WELCOME, id="welcome"))

    async def open_session(self, session_id: int) -> None:
        session = self.store.session(session_id)
        if session is None:
            return
        if self.session is not None and self.session.id != session.id:
            self.store.release(self.session.id)
        if not self.store.claim(session.id):
            self.app.notify(
                f"“{session.title}” is open in another Potion chat; what you send here starts a new chat.",
                title="Chat history",
                severity="warning",
            )
        self.session, self.history = session, self.store.messages(session_id)
        views = [view_for(m) for m in self.history]
        if self.history and self.history[-1].role == "user":
            views.append(
                MessageView(
                    "info",
                    "_No answer was saved for this question: Potion stopped before it finished. "
                    "Send it again to get one._",
                )
            )
        await self.conversation.remove_children()
        await self.conversation.mount_all(views)
        self.conversation.scroll_end(animate=False)
        self.refresh_sessions()
        self.measure_context()

    def measure_context(self) -> None:
        """Show how much of the context the open chat takes (tokenizing is fast next to generating)."""
        if self.app.backend is None:
            return
        system = self.session.system_prompt if self.session else self.pending_system
        messages = chat_messages(system, self.history)
        self.status.context_used = sum(self.app.count_tokens(m["content"]) + 4 for m in messages)

    async def ensure_writable(self) -> None:
        """If another chat now writes the open session, continue in a new one: never interleave."""
        if self.session is None or self.store.claim(self.session.id):
            return
        title = self.session.title
        self.session, self.history = None, []
        await self.conversation.remove_children()
        self.app.notify(
            f"“{title}” is open in another Potion chat; this message starts a new chat.",
            title="Chat history",
            severity="warning",
        )

    def ensure_session(self, first_text: str) -> Session:
        if self.session is None:
            self.session = self.store.new_session(
                session_title(first_text), system_prompt=self.pending_system
            )
            self.pending_system, self.history = None, []
        return self.session

    def _busy(self) -> bool:
        if self.generating:
            self.app.notify("Still answering: press Esc to stop it first.", severity="warning")
        return self.generating

    @on(SessionSelected)
    async def _session_selected(self, message: SessionSelected) -> None:
        if self.session and message.session_id == self.session.id or self._busy():
            return
        await self.open_session(message.session_id)

    async def action_new_session(self) -> None:
        if self._busy():
            return
        if self.session is not None:
            self.store.release(self.session.id)
        self.session, self.history = None, []
        await self._show_welcome()
        self.refresh_sessions()
        self.prompt.focus()

    def action_rename_session(self) -> None:
        session = self.session
        if session is None:
            self.app.notify("This chat has no messages yet; nothing to rename.", severity="warning")
            return

        def done(title: str | None) -> None:
            if title is None:
                return
            try:
                self.store.rename_session(session.id, title)
            except PotionError as exc:
                self.error(exc)
                return
            session.title = " ".join(title.split())
            self.refresh_sessions()

        self.app.push_screen(AskScreen("Rename chat:", session.title), done)

    def action_delete_session(self) -> None:
        session = self.session
        if session is None or self._busy():
            return

        async def done(yes: bool | None) -> None:
            if not yes:
                return
            self.store.delete_session(session.id)
            self.session, self.history = None, []
            remaining = self.store.sessions()
            if remaining:
                await self.open_session(remaining[0].id)
            else:
                await self._show_welcome()
                self.refresh_sessions()
            self.app.notify(f"Deleted “{session.title}”.")

        count = len(self.history)
        self.app.push_screen(ConfirmScreen(f"Delete “{session.title}” and its {count} messages?"), done)

    def action_search(self) -> None:
        sidebar = self.query_one(Sidebar)
        sidebar.display = True
        sidebar.query_one("#session-search", Input).focus()

    def action_toggle_sidebar(self) -> None:
        sidebar = self.query_one(Sidebar)
        sidebar.display = not sidebar.display
        if not sidebar.display:
            self.prompt.focus()

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    # -- sending --------------------------------------------------------------------------------------

    @on(PromptSubmitted)
    async def _submitted(self, message: PromptSubmitted) -> None:
        text = message.text
        if not text.strip():
            return
        if is_command(text):
            if await self.run_command(text):
                self.prompt.clear()
            return
        if text.lstrip().startswith("//"):
            text = text.lstrip()[1:]
        if await self.send(text):
            self.prompt.clear()

    def _check_fits(self, text: str) -> None:
        budget = self.app.n_ctx() - self.app.max_tokens
        # Cheap character bound first: tokenizing a megabyte just to refuse it is wasted time.
        if len(text) > budget * 8:
            raise InputTooLarge(
                f"the message is {len(text) / 1024:.0f} KB; the model's context holds about {budget} tokens",
                hint="trim it, or attach one function with /explain PATH:LINE",
            )
        tokens = self.app.count_tokens(text)
        if tokens > budget:
            raise InputTooLarge(
                f"the message is {tokens} tokens; the model's context leaves room for {budget}",
                hint="trim it, or attach one function with /explain PATH:LINE",
            )

    async def send(self, text: str) -> bool:
        """Save the question, show it, and start the answer. False (and a notification) if it can't."""
        if self._busy():
            return False
        if self.app.load_error and self.app.backend is None:
            self.error(f"No model: {self.app.load_error}. Use /model to pick another.", "Model")
            return False
        try:
            self._check_fits(text)
            await self.ensure_writable()
            session = self.ensure_session(text)
            stored = self.store.add_message(session.id, "user", text)
            if session.model != self.app.model_name:  # sessions.model: which model answers this chat
                self.store.set_model(session.id, self.app.model_name)
                session.model = self.app.model_name
        except PotionError as exc:
            self.error(exc)
            return False
        self.history.append(stored)
        if self.query("#welcome"):
            await self.query_one("#welcome").remove()
        await self._remove_info()
        self._answer = MessageView("assistant", "")
        self._answer.add_class("-streaming")
        await self.conversation.mount_all([view_for(stored), self._answer])
        self.conversation.anchor()
        self.refresh_sessions()
        self.app.check_promotion()  # a promoted default model answers from this request on
        self._start(chat_messages(session.system_prompt, self.history))
        return True

    async def _remove_info(self) -> None:
        for view in self.conversation.query(".-info"):
            await view.remove()

    def _start(self, messages: list[dict[str, str]]) -> None:
        self.generation += 1
        self.generating = True
        self._cancel = threading.Event()
        self.buffer = TokenBuffer()
        self.displayed_tokens = 0
        self.status.state = "answering… (Esc to stop)"
        self._flush_timer = self.set_interval(self.app.flush_interval, self._flush)
        self.worker_idle.clear()
        self._generate(self.generation, messages, self._cancel, self.buffer)

    @work(thread=True, exclusive=True, group="generate")
    def _generate(
        self, generation: int, messages: list[dict[str, str]], cancel: threading.Event, buffer: TokenBuffer
    ) -> None:
        app = self.app
        text: list[str] = []
        status, error, prompt_tokens, dropped = "complete", None, 0, 0
        first = last = time.perf_counter()
        backend = app.wait_for_backend(cancel)
        try:
            if backend is None:
                if not cancel.is_set():
                    raise PotionError(f"no model: {app.load_error}", hint="use /model to pick another")
            else:
                budget = backend.info.n_ctx - app.max_tokens
                messages, prompt_tokens, dropped = fit_messages(
                    messages, lambda t: len(backend.tokenize(t)), budget
                )
                first = time.perf_counter()
                for index, piece in enumerate(
                    backend.chat(messages, max_tokens=app.max_tokens, cancel=cancel)
                ):
                    if index == 0:
                        first = time.perf_counter()
                    text.append(piece)
                    buffer.push(piece)
                last = time.perf_counter()
            if cancel.is_set():
                status = "interrupted"
        except PotionError as exc:
            status, error = "error", exc.user_message()
        except (OSError, RuntimeError, ValueError) as exc:  # a backend bug must not take the chat down
            status, error = "error", f"{type(exc).__name__}: {exc}"
        finally:
            self.worker_idle.set()
        n = len(text)
        stats = getattr(backend, "last_stats", None)
        prompt_tokens = getattr(stats, "prompt_tokens", 0) or prompt_tokens
        tps = (n - 1) / (last - first) if n > 1 and last > first else 0.0
        self.post_message(
            GenerationFinished(generation, "".join(text), status, error, n, prompt_tokens, tps, dropped)
        )

    async def _flush(self) -> None:
        text, count = self.buffer.take()
        if text and self._answer is not None:
            await self._answer.append(text)
            self.displayed_tokens += count

    @on(GenerationFinished)
    async def _finished(self, message: GenerationFinished) -> None:
        if message.generation != self.generation or not self.generating:
            return
        if self._flush_timer is not None:
            self._flush_timer.stop()
        await self._flush()
        # `generating` stays true until the answer is saved and re-rendered whole, so whoever waits on it
        # sees the finished message; taking `_answer` marks the answer as being saved (see stop_and_save).
        view, self._answer = self._answer, None
        note = f"{message.completion_tokens} tokens · {message.tokens_per_s:.1f} tok/s"
        if message.dropped:
            note += f" · {message.dropped} older messages left out of context"
        meta = {"tokens": message.completion_tokens, "tokens_per_s": round(message.tokens_per_s, 2)}
        if message.error:
            meta["error"] = message.error
        self._save_answer(message.text, message.status, meta)
        if view is not None:
            view.remove_class("-streaming")
            shown = message.text
            if message.error:
                shown += f"\n\n> **Error:** {message.error}"
            await view.finish(shown, message.status, note)
        self.status.state = {"complete": "ready", "interrupted": "interrupted", "error": "failed"}[
            message.status
        ]
        self.status.tokens_per_s = message.tokens_per_s
        self.status.context_used = message.prompt_tokens + message.completion_tokens
        self.generating = False
        if message.error:
            self.error(message.error, "Generation failed")

    def _save_answer(self, text: str, status: str, meta: dict) -> None:
        if self.session is None:
            return
        try:
            self.history.append(
                self.store.add_message(self.session.id, "assistant", text, status=status, meta=meta)
            )
        except PotionError as exc:
            self.error(exc, "History")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Esc only means "stop" while an answer streams; otherwise it goes to the focused widget.
        if action == "cancel":
            return self.generating
        return True

    def action_cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def stop_and_save(self) -> None:
        """On quit mid-answer: keep what was generated, marked as interrupted."""
        if not self.generating or self._answer is None:  # no answer, or _finished is already saving it
            return
        if self._cancel is not None:
            self._cancel.set()
        self.generating = False
        partial = (self._answer.content if self._answer else "") + self.buffer.take()[0]
        self._save_answer(partial, "interrupted", {"tokens": self.buffer.pushed})

    # -- code blocks ----------------------------------------------------------------------------------

    def _code_target(self) -> tuple[int, str, str] | None:
        focused = self.app.focused
        view = (
            focused
            if isinstance(focused, MessageView) and focused.blocks()
            else self.conversation.last_with_code()
        )
        picked = view.selected() if view is not None else None
        if picked is None:
            self.app.notify("No code block to use yet.", severity="warning")
            return None
        index, block = picked
        return index, block.code, suggested_filename(block, index)

    def action_copy_code(self) -> None:
        target = self._code_target()
        if target is None:
            return
        _, code, _ = target
        self.app.copy_to_clipboard(code)
        lines = len(code.splitlines())
        self.app.notify(f"Copied {lines} line{'s' * (lines != 1)} to the clipboard.")

    def action_save_code(self) -> None:
        target = self._code_target()
        if target is None:
            return
        _, code, suggestion = target

        def write(path: Path) -> None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(code if code.endswith("\n") else code + "\n", encoding="utf-8")
            except OSError as exc:
                self.error(f"Could not save {path}: {exc.strerror or exc}")
                return
            self.app.notify(f"Saved {self._relative(path)}.")

        def chosen(answer: str | None) -> None:
            if not answer or not answer.strip():
                return
            path = self.resolve_path(answer.strip())
            if path.exists():
                self.app.push_screen(
                    ConfirmScreen(f"{self._relative(path)} exists. Overwrite it?", yes="Overwrite"),
                    lambda yes: write(path) if yes else None,
                )
            else:
                write(path)

        self.app.push_screen(AskScreen("Save code block to:", suggestion), chosen)

    def resolve_path(self, text: str) -> Path:
        path = Path(text).expanduser()
        return path if path.is_absolute() else self.app.workdir / path

    def _relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.app.workdir))
        except ValueError:
            return str(path)
