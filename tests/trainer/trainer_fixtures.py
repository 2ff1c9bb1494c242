"""Corpus fixtures in corpus.schema's layout: small, varied Elixir modules and conversations."""

from __future__ import annotations

from pathlib import Path


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
