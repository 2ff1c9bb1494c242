"""The Potion chat app: owns the backend (loaded in a worker) and the history store.

The backend is injected: tests pass a `FakeBackend`, `potion chat` a factory around
`potion.backends.open_backend`. The factory runs in the load worker, because resolving a registry model
may verify or download a file, and loading a GGUF takes seconds; the UI stays usable meanwhile, and if
loading fails the app still browses and exports history.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import App

from potion import versions
from potion.backends.base import Backend, CancelToken
from potion.errors import PotionError
from tui.errors import HistoryError
from tui.history import HistoryStore
from tui.messages import ModelFailed, ModelLoaded
from tui.screens.chat import ChatScreen

BackendFactory = Callable[[str | None, str | None], Backend]  # (model name, server URL) -> Backend


class PotionChat(App[None]):
    CSS_PATH = "potion.tcss"
    TITLE = "Potion chat"
    ENABLE_COMMAND_PALETTE = False

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        backend_factory: BackendFactory | None = None,
        model: str | None = None,
        url: str | None = None,
        store: HistoryStore | None = None,
        history_path: Path | None = None,
        workdir: Path | None = None,
        max_tokens: int = 768,
        flush_interval: float = 0.05,
    ) -> None:
        super().__init__()
        if backend is None and backend_factory is None:
            raise ValueError("PotionChat needs a backend or a backend_factory")
        self.backend: Backend | None = None
        self._initial_backend = backend
        self.backend_factory = backend_factory
        self.model_spec, self.url = model, url
        self.model_name = backend.info.name if backend is not None else (model or url or "default model")
        self.load_error: str | None = None
        self._model_ready = threading.Event()  # set when a load attempt ends, success or not
        self.store = store
        self.history_path = history_path
        self.workdir = (workdir or Path.cwd()).resolve()
        self.max_tokens = max_tokens
        self.flush_interval = flush_interval
        self._chat: ChatScreen | None = None
        self.notices: list[tuple[str, str]] = []  # (severity, message) of every notification
        # Set while the loaded model is "the default": a promotion (`potion models promote`) then reloads.
        self._stable: versions.StableWatcher | None = None

    def notify(self, message: str, *, title: str = "", severity: str = "information", **kwargs) -> None:  # type: ignore[override]
        # Keep what the user was told: tests assert on it, and it outlives the toast.
        self.notices.append((severity, message))
        super().notify(message, title=title, severity=severity, **kwargs)  # type: ignore[arg-type]

    # -- startup --------------------------------------------------------------------------------------

    async def on_mount(self) -> None:
        notice = None
        if self.store is None:
            try:
                self.store = HistoryStore.open(self.history_path)
                notice = self.store.notice
            except HistoryError as exc:
                self.store = HistoryStore(":memory:")
                notice = f"{exc.user_message()}; this session's history will not be saved"
        else:
            notice = self.store.notice
        self._chat = ChatScreen()
        await self.push_screen(self._chat)
        if notice:
            self.notify(notice, title="Chat history", severity="warning", timeout=15)
        self._load(self._initial_backend, self.model_spec, self.url)

    @property
    def chat_screen(self) -> ChatScreen:
        return self._chat_screen()

    def _chat_screen(self) -> ChatScreen:
        if self._chat is None:
            raise LookupError("the chat screen is not mounted yet")
        return self._chat

    # -- the model ------------------------------------------------------------------------------------

    @property
    def loading(self) -> bool:
        return not self._model_ready.is_set()

    def switch_model(self, model: str | None, url: str | None) -> None:
        """Open another model (registry name or path) or server URL; the current one stays until it loads."""
        if self.backend_factory is None:
            self.notify(
                "This chat was started with a fixed backend; /model cannot switch it.", severity="error"
            )
            return
        self._load(None, model, url)

    def _load(self, backend: Backend | None, model: str | None, url: str | None) -> None:
        name = backend.info.name if backend is not None else (url or model or "default model")
        self._stable = None
        if backend is None and not url and model in (None, versions.STABLE):
            try:
                self._stable = versions.StableWatcher()
            except PotionError as exc:  # a damaged pointer file: loading the default says so too
                self.notify(exc.user_message(), title="Model", severity="warning")
        self._model_ready.clear()
        self._chat_screen().model_state(name, "loading…")
        self._load_worker(backend, model, url, name)

    def check_promotion(self) -> None:
        """Before a request: if the default model was promoted or rolled back since it loaded, load the
        new one; the request waits for it (`wait_for_backend`) and is answered by it."""
        if self._stable is None:
            return
        try:
            spec = self._stable.moved()
        except PotionError as exc:
            self._stable = None  # said once; keep the model that works
            self.notify(f"{exc.user_message()}; keeping {self.model_name}", title="Model", severity="warning")
            return
        if spec is not None:
            self.notify(f"{spec} was promoted; loading it.", title="Model")
            self._load(None, None, None)

    @work(thread=True, exclusive=True, group="load")
    def _load_worker(self, backend: Backend | None, model: str | None, url: str | None, name: str) -> None:
        start = time.perf_counter()
        try:
            if backend is None:
                assert self.backend_factory is not None
                backend = self.backend_factory(model, url)
            backend.load()
            name = backend.info.name or name
        except PotionError as exc:
            self.post_message(ModelFailed(name, exc.user_message()))
            return
        except (OSError, RuntimeError, ValueError) as exc:  # llama.cpp reports a bad GGUF as ValueError
            self.post_message(ModelFailed(name, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(ModelLoaded(backend, name, time.perf_counter() - start))

    def on_model_loaded(self, message: ModelLoaded) -> None:
        old, self.backend = self.backend, message.backend
        self.model_name, self.load_error = message.name, None
        self._model_ready.set()
        if old is not None and old is not message.backend:
            old.close()
        screen = self._chat_screen()
        screen.model_state(message.name, "ready", n_ctx=message.backend.info.n_ctx)
        screen.measure_context()

    def on_model_failed(self, message: ModelFailed) -> None:
        self._model_ready.set()
        if self.backend is not None:
            # A failed switch keeps the model that works.
            self.notify(
                f"Could not load {message.name}: {message.error}. Still using {self.model_name}.",
                title="Model",
                severity="error",
                timeout=12,
            )
            self._chat_screen().model_state(self.model_name, "ready", n_ctx=self.backend.info.n_ctx)
            return
        self.load_error = f"{message.name}: {message.error}"
        self.notify(f"Could not load {self.load_error}", title="Model", severity="error", timeout=12)
        self._chat_screen().model_state(message.name, "load failed: /model to pick another")

    def wait_for_backend(self, cancel: CancelToken) -> Backend | None:
        """Block a worker thread until the model is loaded, failed, or the request is cancelled."""
        while not self._model_ready.wait(0.05):
            if cancel.is_set():
                return None
        return self.backend

    def n_ctx(self) -> int:
        return self.backend.info.n_ctx if self.backend is not None else 4096

    def count_tokens(self, text: str) -> int:
        """Tokens in `text` by the model's tokenizer, or an estimate while it is loading."""
        if self.backend is not None:
            return len(self.backend.tokenize(text))
        return len(text) // 3 + 1

    # -- shutdown -------------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        self._chat_screen().stop_and_save()
        self.exit()

    def on_unmount(self) -> None:
        if self.backend is not None:
            # Freeing the model under a generating thread would crash llama.cpp: let it see the cancel.
            if self._chat is not None and not self._chat.worker_idle.wait(10):
                return  # leave the model to process exit rather than free it mid-generation
            self.backend.close()
        if self.store is not None:
            self.store.close()
