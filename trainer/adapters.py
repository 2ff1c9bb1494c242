"""The adapter registry: every finished run registers its adapter; one is promoted.

`data_dir()/adapters/registry.json` lists registered adapters (id -> adapter dir) and the promotion history;
the promoted adapter is the last entry of the history, and `rollback` pops it to restore the previous one.
`potion export` with no argument exports the promoted adapter. The model registry picks it up through its
export: promoting an adapter that has one, or exporting the promoted adapter, points the registry's
`stable` model (what the editor, the chat and `potion complete` use by default) at that export, and a
rollback of the adapter moves `stable` back when it was that adapter's export. The adapter's own sidecar,
`adapter/potion_adapter.json` (docs/INTERFACES.md), holds its base model (spec, HF dir, sha256,
architecture) and eval metrics; an adapter refuses a base whose sha256 differs.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from potion import exported, settings, versions
from potion.errors import PotionError
from trainer.errors import AdapterError

SIDECAR = "potion_adapter.json"


@dataclass(frozen=True)
class AdapterRecord:
    """One adapter, as its sidecar describes it."""

    id: str
    run_dir: str
    adapter_dir: str
    base: dict[str, str]
    metrics: dict[str, Any]
    created: str
    promoted: bool = False

    def check_base(self, sha256: str) -> None:
        """AdapterError unless `sha256` is the hash of the base this adapter was trained on."""
        check_base(self.base, sha256, what=f"adapter {self.id}")


def check_base(base: dict[str, str], sha256: str, *, what: str, hint: str | None = None) -> None:
    """AdapterError unless `sha256` hashes `base` (a sidecar's `base`), the base `what` was trained on."""
    if sha256 != base["sha256"]:
        raise AdapterError(
            f"{what} was trained on a base with sha256 {base['sha256'][:12]}…, not {sha256[:12]}…",
            hint=hint or f"use its base {base['spec']} ({base['hf_dir']})",
        )


def write_sidecar(adapter_dir: Path, *, adapter_id: str, run_dir: Path, base: dict, metrics: dict) -> Path:
    data = {
        "id": adapter_id,
        "run_dir": str(run_dir),
        "base": {k: base[k] for k in ("spec", "hf_dir", "sha256", "architecture")},
        "metrics": metrics,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = adapter_dir / SIDECAR
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def read_sidecar(adapter_dir: Path) -> AdapterRecord:
    path = adapter_dir / SIDECAR
    try:
        data = json.loads(path.read_text())
        return AdapterRecord(
            id=data["id"],
            run_dir=data["run_dir"],
            adapter_dir=str(adapter_dir),
            base=data["base"],
            metrics=data.get("metrics", {}),
            created=data["created"],
        )
    except (OSError, ValueError, KeyError) as exc:
        raise AdapterError(
            f"{path} is missing or unreadable", hint="is this a potion adapter directory?"
        ) from exc


def _root() -> Path:
    root = settings.data_dir() / "adapters"
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextmanager
def _registry() -> Iterator[dict[str, Any]]:
    """The registry, locked; written back (atomically) when the block succeeds."""
    root = _root()
    with open(root / ".lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        path = root / "registry.json"
        data = json.loads(path.read_text()) if path.is_file() else {"adapters": {}, "history": []}
        before = json.dumps(data, sort_keys=True)
        yield data
        if json.dumps(data, sort_keys=True) != before:
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=2) + "\n")
            os.replace(tmp, path)


def register(adapter_dir: Path) -> AdapterRecord:
    """Add a finished run's adapter to the registry (not promoted)."""
    record = read_sidecar(Path(adapter_dir).resolve())
    with _registry() as reg:
        reg["adapters"][record.id] = {"adapter_dir": record.adapter_dir}
    return record


def _record(reg: dict[str, Any], adapter_id: str) -> AdapterRecord:
    entry = reg["adapters"].get(adapter_id)
    if entry is None:
        raise AdapterError(f"no adapter {adapter_id!r} in the registry", hint="see `potion adapters list`")
    record = read_sidecar(Path(entry["adapter_dir"]))
    promoted = bool(reg["history"]) and reg["history"][-1] == adapter_id
    return AdapterRecord(**{**record.__dict__, "promoted": promoted})


def list_adapters() -> list[AdapterRecord]:
    """Registered adapters, oldest first (an adapter whose folder is gone is left out)."""
    with _registry() as reg:
        out = []
        for adapter_id in reg["adapters"]:
            try:
                out.append(_record(reg, adapter_id))
            except AdapterError:
                continue
    return sorted(out, key=lambda r: r.created)


def resolve(spec: str | None = None) -> AdapterRecord:
    """None: the promoted adapter; else an id, a run directory or an adapter directory."""
    with _registry() as reg:
        if spec is None:
            if not reg["history"]:
                raise AdapterError("no adapter is promoted", hint="run `potion adapters promote ID`")
            return _record(reg, reg["history"][-1])
        if spec in reg["adapters"]:
            return _record(reg, spec)
    path = Path(spec).expanduser()
    for candidate in (path, path / "adapter"):
        if (candidate / SIDECAR).is_file():
            return read_sidecar(candidate.resolve())
    raise AdapterError(
        f"no adapter {spec!r}", hint="give an id from `potion adapters list`, or a run directory"
    )


def promote(adapter_id: str) -> AdapterRecord:
    """Make `adapter_id` the promoted adapter and, when it has an export, the registry's `stable` model."""
    with _registry() as reg:
        _record(reg, adapter_id)  # exists and readable
        if not reg["history"] or reg["history"][-1] != adapter_id:
            reg["history"].append(adapter_id)
        record = _record(reg, adapter_id)
    make_default_model(adapter_id)
    return record


def rollback() -> AdapterRecord | None:
    """Restore the previously promoted adapter (None when the history becomes empty).

    When the registry's `stable` model is an export of the adapter rolled back, `stable` is rolled back
    too (to the model it pointed at before that export was made the default)."""
    with _registry() as reg:
        if not reg["history"]:
            raise AdapterError("nothing to roll back: no adapter was ever promoted")
        gone = reg["history"].pop()
        record = _record(reg, reg["history"][-1]) if reg["history"] else None
    if _export_adapter(versions.stable()) == gone:
        versions.rollback()
    return record


def promoted_id() -> str | None:
    """The id of the promoted adapter, or None."""
    with _registry() as reg:
        return reg["history"][-1] if reg["history"] else None


def exports_of(adapter_id: str) -> list[exported.Export]:
    """The registered exports of an adapter, oldest first."""
    found = [e for e in exported.list_exports() if _adapter_id(e) == adapter_id]
    return sorted(found, key=lambda e: str(e.record.get("created", "")))


def make_default_model(adapter_id: str) -> str | None:
    """Point the registry's `stable` model at the newest export of `adapter_id`; its name, or None when
    the adapter has no export yet (`potion export` makes one, and makes it the default if still promoted)."""
    found = exports_of(adapter_id)
    if not found:
        return None
    versions.promote(found[-1].name)
    return found[-1].name


def _adapter_id(export: exported.Export) -> str | None:
    adapter = export.record.get("adapter")
    return adapter.get("id") if isinstance(adapter, dict) else None


def _export_adapter(spec: str) -> str | None:
    """The adapter id of the export `spec` names (`NAME` or `NAME:TYPE`), else None."""
    try:
        export = exported.load(exported.split_name(spec)[0])
    except PotionError:
        return None
    return _adapter_id(export) if export is not None else None
