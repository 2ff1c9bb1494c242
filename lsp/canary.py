"""The canary model of the language server: its settings and its loading next to the stable model.

Settings (`potion.canary.*`, nested as VS Code sends them or as dotted keys):
`model` (a model spec, or the name a server knows the model by), `backendUrl` (its server; default: the
stable model's server, or in-process when the stable model is in-process) and `share` (0-1). Routing
itself is the engine's (`CompletionEngine.set_canary`), by `potion.backends.canary`.

The candidate loads after the stable model is ready, so the stable model serves from the start and the
memory check of a second in-process model sees the first one loaded. If the candidate does not exist,
does not fit or fails to load, one `window/showMessage` says so and the stable model keeps serving every
suggestion. Changing only the share re-routes at once, without reloading.

With `"backend": "fake"`, a `fake.canary` section (like `fake`: `responses`, `token_delay_ms`,
`load_error`) scripts the candidate; without one the candidate is opened for real.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from lsp.errors import ConfigError
from potion.backends.canary import CanaryConfig, CanaryError, check_share, describe_failure, open_candidate

if TYPE_CHECKING:
    from lsp.lifecycle import ServerConfig
    from lsp.server import PotionServer
    from potion.backends import Backend

log = logging.getLogger(__name__)

_KEYS = {"model": "model", "backendurl": "backend_url", "backend_url": "backend_url", "share": "share"}


def parse_canary(options: dict[str, Any], base: CanaryConfig) -> CanaryConfig:
    """`base` updated by a `canary` section (`{"model": ..., "share": ...}`); ConfigError names a bad key."""
    changes: dict[str, Any] = {}
    for raw_key, value in options.items():
        key = _KEYS.get(str(raw_key).lower())
        setting = f"potion.canary.{raw_key}"
        if key is None:
            log.info("ignoring unknown setting %r", setting)
            continue
        if key == "share":
            try:
                changes[key] = check_share(value, setting=setting)
            except CanaryError as exc:
                raise ConfigError(exc.message, hint=exc.hint) from exc
            continue
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"setting {setting!r} must be a string, got {value!r}")
        changes[key] = value or None
    return dataclasses.replace(base, **changes)


def canary_options(options: dict[str, Any]) -> dict[str, Any] | None:
    """The canary part of a settings object: a `canary` section and/or `canary.X` keys; None if absent."""
    section = options.get("canary")
    if section is not None and not isinstance(section, dict):
        raise ConfigError(f"setting 'potion.canary' must be an object, got {section!r}")
    merged = dict(section or {})
    for key, value in options.items():
        if isinstance(key, str) and key.startswith("canary."):
            merged[key.removeprefix("canary.")] = value
    return merged if section is not None or merged else None


def _load_key(config: ServerConfig) -> tuple:
    """What identifies the candidate backend: a change in any of these reloads it (the share does not)."""
    canary = config.canary
    return (
        canary.model,
        canary.backend_url or config.backend_url,
        config.backend,
        config.n_ctx,
        repr(config.fake.get("canary")),
    )


def make_candidate(config: ServerConfig) -> Backend:
    """The candidate's backend for these settings, not loaded yet."""
    fake = config.fake.get("canary") if config.backend == "fake" else None
    if isinstance(fake, dict):  # read like the stable model's `fake` section (lsp.lifecycle.make_backend)
        from potion.backends import FakeBackend
        from potion.errors import BackendError

        error = fake.get("load_error")
        return FakeBackend(
            list(fake.get("responses") or [""]),
            info=dataclasses.replace(FakeBackend().info, name=config.canary.model or "fake-canary"),
            token_delay=float(fake.get("token_delay_ms", 0)) / 1000,
            load_error=BackendError(str(error)) if error else None,
        )
    stable_url = config.backend_url if config.backend != "fake" else None
    return open_candidate(config.canary, stable_url=stable_url, n_ctx=config.n_ctx)


class CanaryLoader:
    """Owns the candidate backend: loads it after the stable model, hands it to the engine, closes it."""

    def __init__(self, server: PotionServer) -> None:
        self.server = server
        self.backend: Backend | None = None
        self.error: str | None = None  # why the configured candidate is not serving (potion/status)
        self._key: tuple | None = None
        self._generation = 0
        self._lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def start(self, config: ServerConfig) -> None:
        """Apply the canary settings: re-route at once if only the share changed, else (re)load."""
        canary = config.canary
        key = _load_key(config) if canary.enabled else None
        with self._lock:
            if key is not None and key == self._key:
                if self.backend is not None:
                    self.server.engine.set_canary(self.backend, canary.share)
                return
            self._generation += 1
            generation = self._generation
            self._key = key
            old, self.backend, self.error = self.backend, None, None
        self.server.engine.set_canary(None)
        if old is not None:
            self.server.engine.cancel_running()  # a generation on the old candidate stops at its next token
            threading.Thread(target=old.close, name="potion-close-canary", daemon=True).start()
        if key is None:
            return
        self.thread = threading.Thread(
            target=self._load, args=(config, generation), name="potion-load-canary", daemon=True
        )
        self.thread.start()

    def _current(self, generation: int) -> bool:
        with self._lock:
            return generation == self._generation

    def _load(self, config: ServerConfig, generation: int) -> None:
        server = self.server
        while not server.model_ready.wait(0.1):  # the stable model first: it serves meanwhile
            if not self._current(generation):
                return
        name = config.canary.model or config.canary.backend_url or "canary"
        try:
            backend = make_candidate(config)
            backend.load()
        except Exception as exc:  # any failure: one message, the stable model keeps serving
            message = describe_failure(name, exc)
            log.error("%s", message)
            if self._current(generation):
                with self._lock:
                    self.error = message
                server.show_message(f"Potion: {message}", types.MessageType.Warning)
            return
        with self._lock:
            if generation != self._generation:
                stale = True
            else:
                stale = False
                self.backend = backend
        if stale:
            backend.close()  # the settings changed while it loaded
            return
        share = server.config.canary.share  # the share may have changed while it loaded
        server.engine.set_canary(backend, share)
        log.info("canary %s serves %.0f%% of suggestions", backend.info.name, share * 100)

    def close(self) -> None:
        with self._lock:
            self._generation += 1
            backend, self.backend = self.backend, None
        if backend is not None:
            backend.close()
