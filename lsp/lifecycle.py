"""Settings and model lifecycle of the language server.

Settings come from `initializationOptions` and `workspace/didChangeConfiguration`, either flat or under a
`potion` section, in snake_case or camelCase (`debounceMs`, as VS Code settings are written). A bad value
is reported in one line and the previous settings stay.

The model loads on a background thread after `initialized`, reporting `$/progress`; until it is ready the
AI features answer empty at once and everything else works. If it fails to load, one `window/showMessage`
says why and the server goes on without AI.

Tests and demos without a model use `"backend": "fake"`: a scripted `FakeBackend` configured by the
`fake` section (`responses`: list of strings answered in turn, `token_delay_ms`, `load_delay_ms`,
`load_error`; `models`: {model spec: responses}, answering as whichever model the settings or the `stable`
pointer name). It is never chosen unless a client asks for it by name.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from lsp.canary import canary_options, parse_canary
from lsp.engine import EngineConfig
from lsp.errors import ConfigError
from potion.backends.canary import CanaryConfig
from potion.errors import BackendUnavailable

if TYPE_CHECKING:
    from lsp.server import PotionServer
    from potion.backends import Backend

log = logging.getLogger(__name__)

BACKENDS = ("auto", "fake")


@dataclass(frozen=True)
class ServerConfig:
    """The server's settings. The completion engine's own (`debounce_ms`, `max_tokens`, ...) live in
    `engine`, written once in `lsp.engine.EngineConfig`; clients still send them flat (`debounceMs`)."""

    model: str | None = None  # registry name, hf:OWNER/REPO/FILE.gguf or a path; None: the default model
    # An OpenAI-compatible server (llama-server, vLLM, Ollama) instead, or a pool of them: "URL,URL"
    # (clients may send a list; it is kept joined by commas).
    backend_url: str | None = None
    backend: str = "auto"  # "auto": backend_url or llama.cpp in-process; "fake": scripted (tests)
    n_ctx: int = 4096
    # Clients without inline completion: how long a completion request with no Elixir names to show
    # waits for the model's item (with names it never waits: the item comes on the next request).
    ai_item_wait_ms: int = 300
    inline_completion: bool = True
    elixir_completion: bool = True
    hover: bool = True
    code_actions: bool = True
    telemetry: bool = True
    # One window/showMessage when the p95 latency of the last minute passes this (0: never).
    latency_warning_ms: int = 5000
    fake: dict[str, Any] = field(default_factory=dict)
    engine: EngineConfig = field(default_factory=EngineConfig)
    canary: CanaryConfig = field(default_factory=CanaryConfig)  # `potion.canary.*` (lsp.canary)

    def model_key(self) -> tuple:
        """What identifies the loaded model: a change in any of these reloads it."""
        return (self.backend, self.model, self.backend_url, self.n_ctx, repr(sorted(self.fake.items())))


# Bounds of the whole-number settings, the server's and the engine's.
_LIMITS = {
    "n_ctx": (256, 1 << 20),
    "ai_item_wait_ms": (0, 10_000),
    "latency_warning_ms": (0, 600_000),
    "debounce_ms": (0, 10_000),
    "max_tokens": (1, 4096),
    "time_budget_ms": (50, 600_000),
    "prompt_tokens": (32, 1 << 20),
    "extra_context_chars": (0, 1 << 20),
    "cache_size": (1, 1 << 16),
}
_SERVER_FIELDS = {f.name for f in dataclasses.fields(ServerConfig)} - {"engine", "canary"}
_ENGINE_FIELDS = {f.name for f in dataclasses.fields(EngineConfig)}
# Every setting a client may send (snake_case); `canary` is a section (lsp.canary).
SETTINGS = frozenset(_SERVER_FIELDS | _ENGINE_FIELDS | {"canary"})


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _checked(key: str, raw_key: Any, value: Any, default: Any) -> Any:
    """`value` for setting `key` if it fits the setting's type and bounds; else ConfigError naming it."""
    if key == "backend_url" and isinstance(value, list | str):
        from potion.backends.pool import parse_urls

        try:  # one URL, or a pool: a list or one string separated by commas; kept as "a,b"
            return ",".join(parse_urls(value)) or None
        except ValueError as exc:
            raise ConfigError(f"setting {raw_key!r}: {exc}") from exc
    if key in ("model", "backend_url"):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"setting {raw_key!r} must be a string, got {value!r}")
        return value or None
    if key == "backend":
        if value not in BACKENDS:
            raise ConfigError(f"setting {raw_key!r} must be one of {', '.join(BACKENDS)}, got {value!r}")
        return value
    if key == "fake":
        if not isinstance(value, dict):
            raise ConfigError(f"setting {raw_key!r} must be an object, got {value!r}")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"setting {raw_key!r} must be true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ConfigError(f"setting {raw_key!r} must be a whole number, got {value!r}")
    low, high = _LIMITS[key]
    if not low <= value <= high:
        raise ConfigError(f"setting {raw_key!r} must be between {low} and {high}, got {value!r}")
    return int(value)


def parse_settings(options: Any, base: ServerConfig | None = None) -> ServerConfig:
    """A ServerConfig from client settings on top of `base`. Raises ConfigError naming a bad setting."""
    base = base or ServerConfig()
    if options is None:
        return base
    if not isinstance(options, dict):
        raise ConfigError(
            f"settings must be an object, got {type(options).__name__}", hint="see docs/editors.md"
        )
    if isinstance(options.get("potion"), dict):
        options = options["potion"]
    if isinstance(options.get("features"), dict):  # {"features": {"hover": false}} as VS Code nests them
        options = {**{k: v for k, v in options.items() if k != "features"}, **options["features"]}
    server_defaults, engine_defaults = ServerConfig(), EngineConfig()
    changes: dict[str, Any] = {}
    engine_changes: dict[str, Any] = {}
    if (canary := canary_options(options)) is not None:
        changes["canary"] = parse_canary(canary, base.canary)
    for raw_key, value in options.items():
        key = _snake(str(raw_key))
        if key == "canary" or key.startswith("canary."):
            continue
        if key in _SERVER_FIELDS:
            changes[key] = _checked(key, raw_key, value, getattr(server_defaults, key))
        elif key in _ENGINE_FIELDS:
            engine_changes[key] = _checked(key, raw_key, value, getattr(engine_defaults, key))
        else:
            log.info("ignoring unknown setting %r", raw_key)
    if engine_changes:
        changes["engine"] = dataclasses.replace(base.engine, **engine_changes)
    return dataclasses.replace(base, **changes)


def make_backend(config: ServerConfig) -> Backend:
    """The backend the settings ask for; nothing is loaded yet."""
    if config.backend == "fake":
        from potion.backends import FakeBackend
        from potion.errors import BackendError

        fake = config.fake
        error = fake.get("load_error")
        responses, info = fake.get("responses"), None
        if isinstance(fake.get("models"), dict):  # {"models": {spec: responses}}: stands in for the registry
            from potion import registry
            from potion.backends import ModelInfo

            spec = registry.default_spec(config.model)
            responses = fake["models"].get(spec)
            if responses is None:
                raise BackendError(f"no model named {spec!r} in the fake's models")
            info = ModelInfo(name=spec, family="qwen2.5-coder", fim_tokens=FakeBackend([]).info.fim_tokens)
        backend = FakeBackend(
            list(responses or [""]),
            info=info,
            token_delay=float(fake.get("token_delay_ms", 0)) / 1000,
            load_error=BackendError(str(error)) if error else None,
        )
        delay = float(fake.get("load_delay_ms", 0)) / 1000
        if delay:
            original = backend.load

            def slow_load() -> None:
                time.sleep(delay)  # stands in for reading a GGUF from disk
                original()

            backend.load = slow_load  # type: ignore[method-assign]
        return backend
    from potion.backends import open_backend

    return open_backend(config.model, url=config.backend_url, n_ctx=config.n_ctx)


# Retrying a model server that could not be reached when the server started (doubling back-off).
RETRY_FIRST_S, RETRY_MAX_S = 1.0, 30.0


def _user_message(exc: Exception) -> str:
    return exc.user_message() if hasattr(exc, "user_message") else f"{type(exc).__name__}: {exc}"


def _server_may_return(config: ServerConfig, exc: Exception) -> bool:
    """Whether a failed load is a server that is down (worth retrying), not a bad setting or model."""
    return bool(config.backend_url) and isinstance(exc, BackendUnavailable)


class ModelLoader:
    """Loads the configured backend on a background thread and hands it to the server when ready."""

    def __init__(self, server: PotionServer) -> None:
        self.server = server
        self._generation = 0
        self._lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.error: str | None = None  # why the current model failed to load (`potion/status` shows it)

    def start(self, config: ServerConfig) -> None:
        with self._lock:
            self._generation += 1
            generation = self._generation
            self.error = None
        previous = self.server.set_backend(None)
        self.thread = threading.Thread(
            target=self._load, args=(config, generation, previous), name="potion-load-model", daemon=True
        )
        self.thread.start()

    def state(self) -> str:
        """The model's state: "ready", "error" (see `error`) or "loading" (also before the first load)."""
        if self.server.model_ready.is_set():
            return "ready"
        return "error" if self.error is not None else "loading"

    def _current(self, generation: int) -> bool:
        with self._lock:
            return generation == self._generation

    def _wait(self, generation: int, seconds: float) -> bool:
        """Sleeps up to `seconds`; False as soon as newer settings replaced this load."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self._current(generation):
                return False
            time.sleep(min(0.1, max(deadline - time.monotonic(), 0)))
        return self._current(generation)

    def _load(self, config: ServerConfig, generation: int, previous: Backend | None = None) -> None:
        if previous is not None:
            previous.close()  # frees its memory before the new model loads
        server = self.server
        token = f"potion-load-{uuid.uuid4().hex[:8]}"
        name = config.model or ("fake" if config.backend == "fake" else "the default model")
        server.progress_begin(token, "Potion", f"loading {config.backend_url or name}")
        started = time.monotonic()
        retry_s, failed = RETRY_FIRST_S, False
        while True:
            backend = None
            try:
                backend = make_backend(config)
                backend.load()
                break
            except Exception as exc:  # any failure: say why once, keep serving the non-AI features
                if backend is not None:
                    backend.close()
                message = _user_message(exc)
                log.error("model failed to load: %s", message)
                with self._lock:
                    current = generation == self._generation
                    if current:
                        self.error = message
                if current and not failed:
                    server.progress_end(token, "model failed to load")
                    server.show_message(
                        f"Potion: the model could not be loaded: {message}. AI completions are off; hover, "
                        "Elixir completions and scaffolds still work."
                        + (" Potion keeps trying the server." if _server_may_return(config, exc) else ""),
                        types.MessageType.Error,
                    )
                failed = True
                # A server that is down may come back (a local model file does not change by itself):
                # try again with back-off, silently, until it answers or the settings change.
                if not current or not _server_may_return(config, exc) or not self._wait(generation, retry_s):
                    return
                retry_s = min(retry_s * 2, RETRY_MAX_S)
        if not self._current(generation):
            backend.close()  # the settings changed while it loaded
            return
        with self._lock:
            self.error = None
        if (replaced := server.set_backend(backend)) is not None:
            replaced.close()
        log.info("model ready in %.1fs", time.monotonic() - started)
        if failed:  # its progress already ended with the failure
            server.show_message(
                f"Potion: {config.backend_url} answers again; AI completions are on.", types.MessageType.Info
            )
        else:
            server.progress_end(token, f"{backend.info.name} ready")
