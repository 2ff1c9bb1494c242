"""The language server's features, one module each, every one with a `register(server)`."""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lsp.server import PotionServer

log = logging.getLogger(__name__)

FEATURES = (
    "lsp.features.inline_completion",
    "lsp.features.completion",
    "lsp.features.hover",
    "lsp.features.code_actions",
)


def register_all(server: PotionServer) -> None:
    for name in FEATURES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # Hover and code actions are written in parallel; until they land the server runs without them.
            if exc.name != name:
                raise
            log.warning("feature %s is not available yet", name)
            continue
        module.register(server)
