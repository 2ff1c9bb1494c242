"""Fixtures of the language server tests (helpers live in lsp_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A private POTION_HOME for the server subprocess (telemetry, caches)."""
    path = tmp_path / "potion-home"
    path.mkdir()
    return path
