"""The language server's features, one module each, every one with a `register(server)`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsp.features import (
    code_actions,
    completion,
    file_watching,
    hover,
    inline_completion,
    model_versions,
)

if TYPE_CHECKING:
    from lsp.server import PotionServer

FEATURES = (inline_completion, completion, hover, code_actions, file_watching, model_versions)


def register_all(server: PotionServer) -> None:
    for module in FEATURES:
        module.register(server)
