"""Models under evaluation, named by a spec and reached only through `potion.backends`.

A spec is a registry name (`qwen2.5-coder-0.5b`), a GGUF path, `base + adapter` (resolved by
`potion.backends.open_backend`), or an OpenAI-compatible server URL (`http://host:8080`, optionally
`http://host:8080#model-name`). `identity` tells stored results of one model from another's.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from evals.errors import ModelLoadError
from potion.backends import Backend, LlamaCppBackend, SupervisedLlamaCpp, open_backend
from potion.errors import PotionError


def is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


def open_model(spec: str | None, *, n_ctx: int = 4096, threads: int | None = 1) -> Backend:
    """The backend for `spec`, loaded. Raises ModelLoadError naming the spec and the reason.

    `threads` sets llama.cpp's threads (in-process models): one by default, because the sandbox runs
    programs on the other cores, and on a busy machine llama.cpp's spinning threads slow each other
    down by an order of magnitude (measured: 32 tokens in 110 s with two threads, 9 s with one)."""
    label = spec or "the default model"
    try:
        if spec and is_url(spec):
            url, _, name = spec.partition("#")
            backend = open_backend(name or None, url=url, n_ctx=n_ctx)
        else:
            backend = open_backend(spec, n_ctx=n_ctx)
        if threads and isinstance(backend, LlamaCppBackend | SupervisedLlamaCpp):
            backend.n_threads = threads  # read by load(): nothing is loaded yet
        backend.load()
    except PotionError as exc:
        raise ModelLoadError(
            f"model {label!r} cannot load: {exc.message}", hint=exc.hint or "check the model spec"
        ) from exc
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"model {label!r} cannot load: {exc}", hint="check the model spec") from exc
    return backend


def identity(spec: str | None) -> str:
    """A short key for a spec's model: files by size and modification time (hashing GBs each run would
    cost more than the evaluation), URLs and names as written. A `base + adapter` spec is split the way
    `open_backend` splits it, so a file with `+` in its name is one file, not two names."""
    parts = [spec or "default"]
    if spec and not is_url(spec):
        from potion.registry import split_adapter_spec  # lazy: the registry imports the hub machinery

        base, adapter = split_adapter_spec(spec)
        for piece in (base, adapter):
            path = Path(piece).expanduser() if piece else None
            if path is not None and path.exists():
                size, mtime = _file_stat(path) if path.is_file() else _dir_stat(path)
                parts.append(f"{path.resolve()}:{size}:{mtime}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _file_stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _dir_stat(path: Path) -> tuple[int, int]:
    size = mtime = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            st = os.stat(os.path.join(root, name))
            size += st.st_size
            mtime = max(mtime, st.st_mtime_ns)
    return size, mtime


def slug(spec: str | None) -> str:
    """A file-name-safe label for a spec."""
    text = (spec or "default").replace("://", "-")
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in text)
    return safe.strip("-")[:60] or "model"
