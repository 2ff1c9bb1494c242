"""Tiny models built once per session (converting a real tokenizer takes seconds), in a private home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from trainer_fixtures import write_corpus


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


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus")


@pytest.fixture
def tiny_cfg(tmp_path: Path, corpus_dir: Path, tiny_home: Path, tiny_models, monkeypatch):
    """A fast TrainConfig on the tiny Mistral (its dir from the session cache), a private POTION_HOME."""
    from trainer.config import TrainConfig

    monkeypatch.setenv("POTION_HOME", str(tmp_path / "home"))

    def make(**overrides) -> TrainConfig:
        values = dict(
            model=str(tiny_models("mistral")),
            data=str(corpus_dir),
            output_dir=str(tmp_path / "runs"),
            seq_len=64,
            batch_size=2,
            stage1_steps=4,
            stage2_steps=0,
            eval_steps=2,
            save_steps=2,
            lora_r=4,
            lora_alpha=8,
            lora_dropout=0.0,
            max_eval_rows=4,
        )
        values.update(overrides)
        return TrainConfig(**values)

    return make
