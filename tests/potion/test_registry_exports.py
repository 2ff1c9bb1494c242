"""Exported models in the registry: names, `NAME:TYPE`, `BASE + ADAPTER`, listing and damage, with
hand-made GGUF files laid out the way `potion export` writes them (the real export is tests/quantize)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from pathlib import Path

import pytest

from potion import exported, registry
from potion.backends import SupervisedLlamaCpp, open_backend
from potion.errors import ModelCorrupt, ModelNotFound
from tests.conftest import gguf_bytes


@contextlib.contextmanager
def refused(exc_type: type[Exception], pattern: str):
    """Like pytest.raises(match=), against the whole user message: the error and its fix."""
    with pytest.raises(exc_type) as info:
        yield
    assert re.search(pattern, info.value.user_message()), info.value.user_message()


def make_export(
    name: str, kinds=("f16", "q8_0", "lora"), default: str = "q8_0", adapter: str = "run-1", created: str = ""
) -> Path:
    folder = exported.exports_dir() / name
    folder.mkdir(parents=True)
    files = {}
    for kind in kinds:
        meta = {"general.architecture": "qwen2", "general.name": f"{name} {kind}"}
        if kind == "lora":
            meta["general.type"] = "adapter"
        data = gguf_bytes(meta, [("w", [64, 2], 0)])
        path = folder / f"{name}-{kind}.gguf"
        path.write_bytes(data)
        files[kind] = {"file": path.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    record = {
        "name": name,
        "created": created,
        "adapter": {"id": adapter},
        "base": {"spec": "fake-model"},
        "default": default,
    }
    (folder / exported.EXPORT_SIDECAR).write_text(json.dumps({**record, "files": files}))
    return folder


def test_an_export_resolves_by_name_and_by_type(potion_home):
    folder = make_export("elixir-run")
    assert registry.resolve("elixir-run") == folder / "elixir-run-q8_0.gguf"
    assert registry.resolve("elixir-run:f16") == folder / "elixir-run-f16.gguf"
    assert registry.resolve("Elixir-Run:Q8_0") == folder / "elixir-run-q8_0.gguf"
    with refused(ModelNotFound, "no q4_k_m file.*f16, q8_0"):
        registry.resolve("elixir-run:q4_k_m")
    with refused(ModelNotFound, "LoRA adapter, not a model.*fake-model \\+ elixir-run"):
        registry.resolve("elixir-run:lora")


def test_an_unfinished_export_is_not_a_model(potion_home):
    folder = make_export("half-done")
    (folder / exported.EXPORT_SIDECAR).unlink()  # killed before export.json was published
    with refused(ModelNotFound, "no model named 'half-done'"):
        registry.resolve("half-done")
    assert not any(row.name.startswith("half-done") for row in registry.list_models())


def test_list_models_shows_exports_and_their_state(potion_home):
    make_export("elixir-run")
    rows = {row.name: row for row in registry.list_models()}
    assert {"elixir-run:f16", "elixir-run:q8_0", "elixir-run:lora"} <= set(rows)
    assert rows["elixir-run:q8_0"].state == "unverified"  # never hashed yet
    registry.resolve("elixir-run")
    rows = {row.name: row for row in registry.list_models()}
    assert rows["elixir-run:q8_0"].state == "ready"
    assert "default" in rows["elixir-run:q8_0"].title
    assert rows["elixir-run:q8_0"].source.startswith("export ")


def test_a_damaged_export_file_is_refused_with_the_fix(potion_home):
    folder = make_export("elixir-run")
    path = folder / "elixir-run-q8_0.gguf"
    registry.resolve("elixir-run")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))  # same size, new mtime: the sidecar no longer vouches for it
    with refused(ModelCorrupt, "sha256.*run `potion export` for elixir-run again"):
        registry.resolve("elixir-run")
    with pytest.raises(ModelCorrupt):
        registry.verify("elixir-run")


def test_base_plus_adapter_resolves_both_files(potion_home, make_gguf):
    folder = make_export("elixir-run")
    base = make_gguf("base.gguf", tensors=[("w", [64, 2], 0)])
    for spec in (f"{base} + elixir-run", f"{base}+elixir-run", f"{base} + {folder / 'elixir-run-lora.gguf'}"):
        resolved = registry.resolve_model(spec)
        assert resolved.path == base.resolve()
        assert resolved.adapter == folder / "elixir-run-lora.gguf"
    assert registry.resolve_model(str(base)).adapter is None
    with refused(ModelNotFound, "base and an adapter"):
        registry.resolve(f"{base} + elixir-run")
    with refused(ModelNotFound, "is a model, not a LoRA adapter"):
        registry.resolve_model(f"{base} + {base}")
    with refused(ModelNotFound, "no model named 'nope'"):
        registry.resolve_model(f"{base} + nope")


def test_a_file_whose_name_has_a_plus_is_still_one_model(potion_home, make_gguf):
    path = make_gguf("c++model.gguf", tensors=[("w", [64, 2], 0)])
    assert registry.resolve_model(str(path)).adapter is None
    assert registry.resolve(str(path)) == path.resolve()


def test_open_backend_applies_the_adapter_at_load_time(potion_home, make_gguf):
    folder = make_export("elixir-run")
    base = make_gguf("base.gguf", tensors=[("w", [64, 2], 0)])
    backend = open_backend(f"{base} + elixir-run")
    assert isinstance(backend, SupervisedLlamaCpp)  # llama.cpp in its worker process
    assert backend.model_path == base.resolve()
    assert backend.lora_path == folder / "elixir-run-lora.gguf"
    assert open_backend("elixir-run:f16").lora_path is None


def test_export_names_are_checked(potion_home):
    assert exported.check_name("my-run.v2") == "my-run.v2"
    for bad in ("", "Upper", "../x", "a/b", "x" * 65):
        with pytest.raises(ValueError, match="not a valid export name"):
            exported.check_name(bad)
