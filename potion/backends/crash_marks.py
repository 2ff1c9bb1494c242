"""Model files that crashed llama.cpp on load, remembered by sha256 so they are not loaded again.

A crash on load (a `GGML_ASSERT` on a plausible but wrong header, a segfault) repeats on every try; a
supervisor that restarted it forever would burn CPU and say nothing new. The mark lives in
`data_dir()/crashed-models.json` and names the llama-cpp-python version it crashed under: a new version
may load the file, so its marks no longer apply. Re-downloading or re-exporting the file changes its hash.

Checking costs nothing while no mark exists, and otherwise hashes a file only when a mark of the same size
exists.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from potion import settings

log = logging.getLogger(__name__)

FILE_NAME = "crashed-models.json"


@dataclass(frozen=True)
class CrashMark:
    key: str  # the model's sha256, with "+ADAPTER_SHA256" when a LoRA adapter was applied
    path: str  # where the file was when it crashed (for the message; the hash is what matches)
    size: int
    llama_cpp: str
    reason: str  # the signal and the last line llama.cpp wrote, e.g. "SIGABRT: GGML_ASSERT(...) failed"
    when: float


def marks_path() -> Path:
    return settings.data_dir() / FILE_NAME


def llama_cpp_version() -> str:
    try:
        return metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:
        return "unknown"


def _sha256(path: Path) -> str:
    from potion.registry import sha256_file  # the registry imports hub machinery: only when hashing

    return sha256_file(path)


def _key(model: Path, adapter: Path | None) -> str:
    return _sha256(model) + (f"+{_sha256(adapter)}" if adapter is not None else "")


def _read() -> list[CrashMark]:
    path = marks_path()
    try:
        rows = json.loads(path.read_text())
        return [CrashMark(**row) for row in rows]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, TypeError) as exc:  # a damaged file: forget the marks, say so in the log
        log.warning("ignoring %s: %s", path, exc)
        return []


def find(model: Path, adapter: Path | None = None) -> CrashMark | None:
    """The mark of this model file (and adapter) under the installed llama-cpp-python, if it crashed."""
    marks = [m for m in _read() if m.llama_cpp == llama_cpp_version()]
    try:
        size = model.stat().st_size
    except OSError:
        return None
    candidates = [m for m in marks if m.size == size]
    if not candidates:
        return None
    key = _key(model, adapter)
    return next((m for m in candidates if m.key == key), None)


def record(model: Path, adapter: Path | None, reason: str) -> CrashMark:
    """Remember that `model` (with `adapter`) crashed llama.cpp on load."""
    mark = CrashMark(
        key=_key(model, adapter),
        path=str(model),
        size=model.stat().st_size,
        llama_cpp=llama_cpp_version(),
        reason=reason,
        when=time.time(),
    )
    marks = [m for m in _read() if m.key != mark.key] + [mark]
    path = marks_path()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{FILE_NAME}.", suffix=".partial")
    with os.fdopen(fd, "w") as f:
        json.dump([m.__dict__ for m in marks], f, indent=1)
    os.replace(tmp, path)
    return mark
