"""Shared fixtures: a private POTION_HOME, tiny hand-made GGUF files, a fake registry model."""

from __future__ import annotations

import hashlib
import importlib
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def potion_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point POTION_HOME at a temp dir so models, history and telemetry stay out of the real cache."""
    home = tmp_path / "potion-home"
    home.mkdir()
    monkeypatch.setenv("POTION_HOME", str(home))
    return home


def gguf_bytes(
    metadata: dict[str, Any],
    tensors: Sequence[tuple[str, Sequence[int], int]] = (),
    *,
    version: int = 3,
    order: str = "<",
    alignment: int = 32,
) -> bytes:
    """A GGUF file: `metadata` typed from its Python values (str, bool, int -> uint32/int64, float ->
    float32, lists of those), `tensors` as (name, dims, ggml type) with zero-filled data of the right size.
    """

    def string(s: str) -> bytes:
        raw = s.encode()
        return struct.pack(order + "Q", len(raw)) + raw

    def typed(v: Any) -> tuple[int, bytes]:
        if isinstance(v, bool):
            return 7, struct.pack(order + "?", v)
        if isinstance(v, int):
            if 0 <= v < 2**32:
                return 4, struct.pack(order + "I", v)
            return 11, struct.pack(order + "q", v)
        if isinstance(v, float):
            return 6, struct.pack(order + "f", v)
        if isinstance(v, str):
            return 8, string(v)
        if isinstance(v, list):
            items = [typed(x) for x in v]
            itype = items[0][0] if items else 8
            return 9, struct.pack(order + "IQ", itype, len(v)) + b"".join(b for _, b in items)
        raise TypeError(f"no GGUF type for {v!r}")

    sizes = {0: (1, 4), 1: (1, 2), 2: (32, 18), 8: (32, 34), 12: (256, 144), 14: (256, 210)}
    out = bytearray(b"GGUF" + struct.pack(order + "IQQ", version, len(tensors), len(metadata)))
    for key, value in metadata.items():
        vtype, payload = typed(value)
        out += string(key) + struct.pack(order + "I", vtype) + payload
    offset = 0
    data_sizes = []
    for name, dims, ttype in tensors:
        count = 1
        for d in dims:
            count *= d
        block, nbytes = sizes[ttype]
        size = count // block * nbytes
        out += string(name) + struct.pack(order + "I", len(dims))
        out += b"".join(struct.pack(order + "Q", d) for d in dims) + struct.pack(order + "IQ", ttype, offset)
        data_sizes.append(size)
        offset += -(-size // alignment) * alignment
    if tensors:
        out += b"\0" * (-len(out) % alignment)
        for size in data_sizes:
            out += b"\0" * (-(-size // alignment) * alignment)
    return bytes(out)


@pytest.fixture
def make_gguf(tmp_path: Path) -> Callable[..., Path]:
    """Write a tiny GGUF (see `gguf_bytes`) under tmp_path and return its path."""

    def make(name: str = "tiny.gguf", metadata: dict[str, Any] | None = None, **kwargs: Any) -> Path:
        meta = {"general.architecture": "tiny", "general.name": "Tiny"} if metadata is None else metadata
        path = tmp_path / name
        path.write_bytes(gguf_bytes(meta, **kwargs))
        return path

    return make


@pytest.fixture
def fake_registry_model(tmp_path: Path, potion_home: Path, monkeypatch: pytest.MonkeyPatch):
    """A registry model `fake-model`: a tiny GGUF cut in three chunk wheels (`fake-chunk-part1..3`, extra
    `fake-extra`) installed on a tmp sys.path entry (tmp_path / "site"), found like the real ones.
    """
    from potion import registry

    data = gguf_bytes({"general.architecture": "qwen2", "general.name": "Fake"}, [("w", [64, 2], 0)])
    site = tmp_path / "site"
    dists = []
    for i, chunk in enumerate([data[:50], data[50:-7], data[-7:]], start=1):
        dist, pkg = f"fake-chunk-part{i}", f"fake_chunk_part{i}"
        rel = f"{pkg}/data/part{i:02d}.bin"
        (site / pkg / "data").mkdir(parents=True)
        (site / rel).write_bytes(chunk)
        info = site / f"{pkg}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        record = [rel, f"{pkg}-1.0.dist-info/METADATA", f"{pkg}-1.0.dist-info/RECORD"]
        (info / "RECORD").write_text("".join(f"{line},,\n" for line in record))
        dists.append(dist)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    model = registry.RegistryModel(
        name="fake-model",
        title="Fake",
        filename="fake-model.gguf",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        dists=tuple(dists),
        extra="fake-extra",
    )
    monkeypatch.setitem(registry.MODELS, model.name, model)
    return model


# A Qwen2 header that loads as far as llama.cpp's hyper-parameters: enough to reach its checks.
CRAFTED_QWEN2 = {
    "general.architecture": "qwen2",
    "general.name": "crafted",
    "qwen2.context_length": 512,
    "qwen2.embedding_length": 64,
    "qwen2.block_count": 1,
    "qwen2.feed_forward_length": 128,
    "qwen2.attention.head_count": 2,
    "qwen2.attention.head_count_kv": 2,
    "qwen2.attention.layer_norm_rms_epsilon": 1e-6,
    "tokenizer.ggml.model": "gpt2",
    "tokenizer.ggml.tokens": ["a", "b"],
    "tokenizer.ggml.token_type": [1, 1],
    "tokenizer.ggml.merges": ["a b"],
}


@pytest.fixture
def crafted_gguf(tmp_path: Path) -> Path:
    """A well-formed GGUF whose `qwen2.block_count` was rewritten to 1000 with the `gguf` package: it passes
    `check_gguf` and aborts llama.cpp on load (`GGML_ASSERT(... <= LLAMA_MAX_LAYERS)`), a real SIGABRT."""
    gguf = pytest.importorskip("gguf")
    pytest.importorskip("llama_cpp")
    path = tmp_path / "crafted.gguf"
    path.write_bytes(
        gguf_bytes(CRAFTED_QWEN2, [("token_embd.weight", [64, 2], 0), ("blk.0.attn_q.weight", [64, 64], 0)])
    )
    reader = gguf.GGUFReader(path, "r+")
    field = reader.fields["qwen2.block_count"]
    field.parts[field.data[0]][0] = 1000
    del reader  # flushes the memory map
    return path
