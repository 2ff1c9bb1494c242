"""Where the editor test tools live: what scripts/install-editor-e2e.sh and scripts/install-neovim.sh install.

The cache is outside the checkout (by default `~/.cache/potion-editors`, or $POTION_EDITORS_CACHE) so a
fresh clone on the same machine, as CI makes, finds it instead of building code-server again.
"""

from __future__ import annotations

import os
from pathlib import Path


def editors_cache() -> Path:
    if explicit := os.environ.get("POTION_EDITORS_CACHE"):
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "potion-editors"


CACHE = editors_cache()
CURRENT_NVIM = CACHE / "nvim-0.11"  # scripts/install-neovim.sh
