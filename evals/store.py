"""Stored results: one JSON file per (suite content, model, generation settings), so that a second
`potion eval compare` reads what the first one measured instead of running the model again."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from evals.errors import ResultsError
from potion.settings import data_dir


def results_dir(root: Path | None = None) -> Path:
    path = Path(root) if root else data_dir() / "evals"
    path.mkdir(parents=True, exist_ok=True)
    return path


def key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def commit() -> str | None:
    """The git commit of the code that measured (results are reported with it)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


class ResultStore:
    """JSON documents under `root` by name; written atomically (temp file + os.replace)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = results_dir(root)

    def path(self, kind: str, name: str) -> Path:
        return self.root / kind / f"{name}.json"

    def load(self, kind: str, name: str) -> dict | None:
        path = self.path(kind, name)
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ResultsError(
                f"stored results {path} are unreadable: {exc}", hint="delete the file to measure again"
            ) from exc

    def save(self, kind: str, name: str, document: dict) -> Path:
        path = self.path(kind, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "commit": commit(),
            **document,
        }
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=1)
        os.replace(tmp, path)
        return path
