"""Promotions reach a running server: when `stable` moves (`potion models promote` / `rollback`), the
next document change or open reloads the model, without restarting the editor's server.

Only a server that uses the default model follows the pointer (no `model` setting, or `"stable"`, and no
`backendUrl`): a model named in the settings stays the one the user chose. The check is one `stat` of
the pointer file per event (`potion.versions.StableWatcher`); while the new model loads, AI suggestions
answer empty as at startup, and the requests after it loaded are served by it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lsprotocol import types

from potion import versions
from potion.errors import PotionError

if TYPE_CHECKING:
    from lsp.lifecycle import ServerConfig
    from lsp.server import PotionServer

log = logging.getLogger(__name__)


def follows_stable(config: ServerConfig) -> bool:
    """Whether the settings mean "the default model", i.e. whatever `stable` points at."""
    if config.model not in (None, versions.STABLE) or config.backend_url:
        return False
    return config.backend == "auto" or bool(config.fake.get("models"))


def register(server: PotionServer) -> None:
    state: dict[str, versions.StableWatcher | None] = {"watcher": None}
    complained = False

    def start_watching(ls: PotionServer) -> None:
        try:
            state["watcher"] = versions.StableWatcher()
        except PotionError as exc:  # a damaged pointer file: the load itself says so
            log.warning("not following promotions: %s", exc.user_message())

    def check(event: str, uri: str) -> None:
        nonlocal complained
        watcher = state["watcher"]
        if watcher is None or event not in ("open", "change") or not follows_stable(server.config):
            return
        try:
            spec = watcher.moved()
        except PotionError as exc:
            if not complained:
                complained = True
                server.show_message(f"Potion: {exc.user_message()}", types.MessageType.Warning)
            return
        if spec is not None:
            log.info("stable moved to %s: reloading", spec)
            server.show_message(f"Potion: {spec} was promoted; loading it.", types.MessageType.Info)
            server.loader.start(server.config)

    server.add_startup_hook("initialized", start_watching)
    server.add_document_listener(check)
