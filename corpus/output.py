"""Writing a built corpus: parquet through HF `datasets`, `manifest.json` with the sha256 of every file,
published under its final name only when complete (a temp sibling folder, then one rename)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import datasets
from datasets import Dataset, Features, Value

from corpus.errors import NotACorpus, OutputExists
from corpus.schema import MANIFEST, SPLITS, STAGES, split_path

_STR = Value("string")
FEATURES = {
    "stage1": Features({c: _STR for c in STAGES["stage1"]}),
    "stage2": Features(
        {
            "messages": [{"role": _STR, "content": _STR}],
            **{c: _STR for c in STAGES["stage2"] if c != "messages"},
        }
    ),
}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def temp_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.partial"


def check_target(out: Path, *, force: bool) -> None:
    if out.exists() and not force:
        raise OutputExists(
            f"{out} already exists", hint="pass --force to rebuild it, or choose another --out"
        )


def write(
    out: Path, rows: dict[str, dict[str, list[dict]]], manifest: dict, *, force: bool, progress: bool = True
) -> Path:
    """Write every stage/split, then the manifest, into a temp folder; rename it to `out` last."""
    check_target(out, force=force)
    if not progress:
        datasets.disable_progress_bars()
    tmp = temp_dir(out)
    if tmp.exists():
        shutil.rmtree(tmp)  # left by a build killed while writing
    files = {}
    for stage in STAGES:
        for split in SPLITS:
            path = split_path(tmp, stage, split)
            path.parent.mkdir(parents=True, exist_ok=True)
            data = rows[stage][split]
            columns = {c: [r[c] for r in data] for c in STAGES[stage]}
            Dataset.from_dict(columns, features=FEATURES[stage]).to_parquet(str(path))
            rel = path.relative_to(tmp).as_posix()
            files[rel] = {"sha256": sha256_file(path), "rows": len(data), "bytes": path.stat().st_size}
    manifest = {**manifest, "files": files}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    if out.exists():
        old = out.parent / f".{out.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old)
    else:
        os.replace(tmp, out)
    return out


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise NotACorpus(f"{folder} has no {MANIFEST}", hint="build one with `potion corpus build`")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise NotACorpus(f"{path} is not JSON ({exc.msg})", hint="rebuild the corpus") from exc


def verify(folder: Path) -> list[str]:
    """Files whose sha256 differs from the manifest's (empty when the corpus is intact)."""
    manifest = read_manifest(folder)
    return [
        rel
        for rel, meta in manifest.get("files", {}).items()
        if not (folder / rel).is_file() or sha256_file(folder / rel) != meta["sha256"]
    ]
