"""Fixtures for potion.elixir tests: Elixir's own source tree and the real `elixir`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ELIXIR_SRC = ROOT / ".cache" / "elixir-src"
PUBLIC_DEFS = ROOT / "scripts" / "public_defs.exs"


def stdlib_files() -> list[Path]:
    return sorted(ELIXIR_SRC.glob("lib/*/lib/**/*.ex"))


@pytest.fixture(scope="session")
def elixir_stdlib() -> list[Path]:
    files = stdlib_files()
    if not files:
        pytest.skip(f"Elixir source not found at {ELIXIR_SRC}: run scripts/fetch-elixir-source.sh")
    return files


@pytest.fixture(scope="session")
def elixir_bin() -> str:
    path = shutil.which("elixir")
    if path is None:
        pytest.skip("`elixir` is not on PATH (apt install elixir)")
    return path
