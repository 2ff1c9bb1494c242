"""Exported models: the GGUF files `potion export` wrote, found by name.

An export is a folder `models_dir()/exports/NAME/` holding its GGUF files, each with a `.verified.json`
sidecar (size, mtime, sha256, as for registry models), and `export.json`, written last with
`os.replace`: an export is registered exactly when its `export.json` exists, so a killed export is never
listed. Names:

- `NAME`          the export's default file (its first quant type, else the converted file);
- `NAME:TYPE`     one of its files (`f16`, `q8_0`, `q4_k_m`, ...);
- `NAME:lora`     its LoRA adapter GGUF, only meaningful on the right of `BASE + ADAPTER`.

A file whose size or mtime no longer match its sidecar is re-hashed against `export.json` once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from potion import settings
from potion.errors import ModelCorrupt, ModelNotFound

EXPORT_SIDECAR = "export.json"
LORA = "lora"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_BLOCK = 8 << 20


@dataclass(frozen=True)
class ExportFile:
    kind: str  # "f16", "q8_0", ..., or "lora"
    path: Path
    size: int
    sha256: str


@dataclass(frozen=True)
class Export:
    """One registered export, read from its `export.json`."""

    name: str
    folder: Path
    default: str
    files: dict[str, ExportFile]
    record: dict[str, Any] = field(repr=False)

    def file(self, kind: str | None = None) -> ExportFile:
        kind = (kind or self.default).lower()
        if kind not in self.files:
            have = ", ".join(k for k in self.files if k != LORA)
            raise ModelNotFound(
                f"export {self.name} has no {kind} file", hint=f"it has {have}; use {self.name}:TYPE"
            )
        return self.files[kind]

    @property
    def title(self) -> str:
        adapter = (self.record.get("adapter") or {}).get("id") or "?"
        return f"export of adapter {adapter}"


def exports_dir() -> Path:
    path = settings.models_dir() / "exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_name(name: str) -> str:
    """An export name: lower-case letters, digits, `.`, `_`, `-`; ValueError otherwise."""
    if not NAME_RE.match(name):
        raise ValueError(
            f"{name!r} is not a valid export name (a-z, 0-9, '.', '_', '-'; up to 64 characters)"
        )
    return name


def load(name: str) -> Export | None:
    """The registered export `name`, or None when there is none (or it is not finished)."""
    if not NAME_RE.match(name):
        return None
    folder = exports_dir() / name
    try:
        record = json.loads((folder / EXPORT_SIDECAR).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ModelCorrupt(
            f"{folder / EXPORT_SIDECAR} cannot be read: {exc}", hint=f"run `potion export` for {name} again"
        ) from exc
    files = {
        kind: ExportFile(kind, folder / entry["file"], int(entry["size"]), entry["sha256"])
        for kind, entry in record.get("files", {}).items()
    }
    return Export(name, folder, record.get("default") or next(iter(files), ""), files, record)


def list_exports() -> list[Export]:
    out = []
    for sidecar in sorted(exports_dir().glob(f"*/{EXPORT_SIDECAR}")):
        export = load(sidecar.parent.name)
        if export is not None:
            out.append(export)
    return out


def split_name(spec: str) -> tuple[str, str | None]:
    """`my-run:q4_k_m` -> ("my-run", "q4_k_m"); `my-run` -> ("my-run", None)."""
    name, _, kind = spec.strip().partition(":")
    return name.lower(), (kind.lower() or None) if kind else None


def resolve(spec: str, *, lora: bool = False, rehash: bool = False) -> Path | None:
    """The verified path of an exported file named by `spec`, or None when `spec` names no export.

    `lora=True` asks for the adapter GGUF of `NAME` (the right-hand side of `BASE + ADAPTER`).
    """
    name, kind = split_name(spec)
    export = load(name)
    if export is None:
        return None
    if lora and kind is None:
        kind = LORA
    if kind == LORA and not lora:
        raise ModelNotFound(
            f"{spec} is a LoRA adapter, not a model",
            hint=f"load it on its base: {(export.record.get('base') or {}).get('spec') or 'BASE'} + {name}",
        )
    entry = export.file(kind)
    if rehash:
        sidecar_path(entry.path).unlink(missing_ok=True)
    verify_file(entry.path, entry.sha256, size=entry.size, name=spec)
    return entry.path


# --- the per-file sidecar, shared with quantize's writer -------------------------------------------


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def write_verified(path: Path, sha256: str) -> None:
    """Record that `path`, as it is now (size, mtime), hashes to `sha256`."""
    st = path.stat()
    record = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}
    tmp = sidecar_path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(record) + "\n")
    os.replace(tmp, sidecar_path(path))


def verified_sha256(path: Path) -> str | None:
    """The sha256 a sidecar records for `path` while its size and mtime still match, else None."""
    try:
        st = path.stat()
        record = json.loads(sidecar_path(path).read_text())
    except (OSError, ValueError):
        return None
    if st.st_size == record.get("size") and st.st_mtime_ns == record.get("mtime_ns"):
        return record.get("sha256")
    return None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def verify_file(path: Path, sha256: str, *, size: int, name: str) -> None:
    """ModelNotFound / ModelCorrupt unless `path` is the file `export.json` describes."""
    hint = f"run `potion export` for {split_name(name)[0]} again to rebuild it"
    if not path.is_file():
        raise ModelNotFound(f"{path} of export {name} is missing", hint=hint)
    if verified_sha256(path) == sha256:
        return
    if path.stat().st_size != size:
        raise ModelCorrupt(f"{path} has {path.stat().st_size:,} bytes, expected {size:,}", hint=hint)
    digest = sha256_of(path)
    if digest != sha256:
        raise ModelCorrupt(f"{path} has sha256 {digest[:12]}…, expected {sha256[:12]}…", hint=hint)
    write_verified(path, sha256)
