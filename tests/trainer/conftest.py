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


def elixir_module(i: int) -> str:
    """A small, varied, valid Elixir module (file sizes spread like a real corpus: short and long)."""
    funcs = "\n".join(
        f'  @doc "Adds {j} to `x`."\n  def add_{j}(x), do: x + {j}\n' for j in range(1 + (i * 7) % 9)
    )
    return f'defmodule Demo.Mod{i} do\n  @moduledoc "Module {i}."\n\n{funcs}end\n'


def conversation(i: int) -> list[dict]:
    msgs = [
        {"role": "user", "content": f"Write a function that adds {i} to its argument."},
        {"role": "assistant", "content": f"def add_{i}(x), do: x + {i}"},
    ]
    if i % 3 == 0:
        msgs.insert(0, {"role": "system", "content": "You write idiomatic Elixir."})
    return msgs


def write_corpus(root: Path, *, n_text: int = 40, n_chat: int = 24, stage1: list[dict] | None = None) -> Path:
    """A corpus directory in corpus.schema's layout, written with pyarrow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from corpus.schema import split_path

    def prov(i: int) -> dict:
        return {
            "source": "dir:/fixture",
            "license": "Apache-2.0",
            "path": f"lib/m{i}.ex",
            "sha": f"{i:064x}",
            "project": f"p{i % 4}",
        }

    for split, lo, hi in (("train", 0, n_text), ("validation", n_text, n_text + 8)):
        rows = (
            stage1
            if stage1 is not None and split == "train"
            else [{"text": elixir_module(i), **prov(i)} for i in range(lo, hi)]
        )
        path = split_path(root, "stage1", split)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), path)
    for split, lo, hi in (("train", 0, n_chat), ("validation", n_chat, n_chat + 6)):
        rows = [{"messages": conversation(i), "task": "doc_to_impl", **prov(i)} for i in range(lo, hi)]
        path = split_path(root, "stage2", split)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), path)
    return root


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
