"""Tiny models built once per session (converting a real tokenizer takes seconds), in a private home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A POTION_HOME for the session's shared tiny models and converted tokenizers."""
    return tmp_path_factory.mktemp("tiny-home")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory, tiny_home: Path):
    """`tiny_models("mistral")` -> the directory of a tiny random model of that architecture (seed 0)."""
    from trainer.tiny import make_tiny_model

    built: dict[str, Path] = {}
    root = tmp_path_factory.mktemp("tiny-models")

    def get(arch: str) -> Path:
        if arch not in built:
            saved = os.environ.get("POTION_HOME")
            os.environ["POTION_HOME"] = str(tiny_home)
            try:
                built[arch] = make_tiny_model(arch, root / arch)
            finally:
                if saved is None:
                    os.environ.pop("POTION_HOME", None)
                else:
                    os.environ["POTION_HOME"] = saved
        return built[arch]

    return get
