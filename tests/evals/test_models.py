"""`evals.models.identity`, the key of stored results: one key per model, and a new key when a model's
files change, so that `potion eval compare` never reuses another model's (or an older file's) results."""

from __future__ import annotations

import os
from pathlib import Path

from evals.models import identity


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_the_same_spec_keeps_its_key_and_different_specs_get_different_keys(tmp_path: Path) -> None:
    base = _write(tmp_path / "base.gguf", b"GGUF base")
    other = _write(tmp_path / "other.gguf", b"GGUF other")
    lora_a = _write(tmp_path / "a-lora.gguf", b"GGUF lora a")
    lora_b = _write(tmp_path / "b-lora.gguf", b"GGUF lora b")
    specs = [
        None,
        "qwen2.5-coder-0.5b",
        "http://127.0.0.1:8080",
        "http://127.0.0.1:8081",
        "http://127.0.0.1:8080#tuned",
        str(base),
        str(other),
        f"{base} + {lora_a}",
        f"{base} + {lora_b}",
        f"{other} + {lora_a}",
        f"qwen2.5-coder-0.5b + {lora_a}",
    ]
    keys = [identity(spec) for spec in specs]
    assert keys == [identity(spec) for spec in specs]  # stable: nothing in the key changes between calls
    assert all(len(k) == 16 and int(k, 16) >= 0 for k in keys)
    assert len(set(keys)) == len(specs), dict(zip(specs, keys, strict=True))


def test_a_rewritten_model_file_gets_a_new_key(tmp_path: Path) -> None:
    model = _write(tmp_path / "model.gguf", b"GGUF v1")
    before = identity(str(model))
    model.write_bytes(b"GGUF v2, retrained")  # in place: same inode, so size and mtime must tell
    assert identity(str(model)) != before
    touched = identity(str(model))
    stat = model.stat()
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same size, newer file
    assert identity(str(model)) != touched


def test_a_rewritten_adapter_or_base_changes_the_key_of_base_plus_adapter(tmp_path: Path) -> None:
    base = _write(tmp_path / "base.gguf", b"GGUF base")
    lora = _write(tmp_path / "lora.gguf", b"GGUF lora")
    spec = f"{base} + {lora}"
    first = identity(spec)
    lora.write_bytes(b"GGUF lora, trained longer")
    second = identity(spec)
    base.write_bytes(b"GGUF base, another quantization")
    third = identity(spec)
    assert len({first, second, third}) == 3


def test_a_file_with_a_plus_in_its_name_is_one_model_file(tmp_path: Path) -> None:
    # `open_backend` loads `c++coder.gguf` as one file (it exists), so its key must follow that file.
    model = _write(tmp_path / "c++coder.gguf", b"GGUF v1")
    before = identity(str(model))
    model.write_bytes(b"GGUF v2, retrained")
    assert identity(str(model)) != before
