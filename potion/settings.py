"""Where Potion keeps its files: model cache, history and telemetry databases.

`POTION_HOME` moves everything under one folder (tests point it at a temp dir).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def home() -> Path | None:
    value = os.environ.get("POTION_HOME")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Large, re-creatable files: assembled GGUF models, hub downloads."""
    root = home()
    path = root / "cache" if root else Path(platformdirs.user_cache_dir("potion"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Files the user would miss: chat history, telemetry."""
    root = home()
    path = root / "data" if root else Path(platformdirs.user_data_dir("potion"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    path = cache_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path
