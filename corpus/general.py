"""General (non-Elixir) code for replay in training and for the forgetting check in evaluation: the Python
standard library's own modules, permissively licensed (PSF licence) and present wherever Potion runs.

Files are split by a hash of their path into a `train` half (mixed into stage-1 training as replay) and an
`eval` half (whose perplexity measures forgetting), so the forgetting check never scores replayed text.
Tests, site-packages and files under 2,000 characters are left out.
"""

from __future__ import annotations

import hashlib
import sysconfig
from pathlib import Path

HALVES = ("train", "eval")
MIN_CHARS = 2000
_SKIP_DIRS = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__", "lib2to3"}


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def half_of(rel: str) -> str:
    return HALVES[hashlib.sha1(rel.encode()).digest()[0] % 2]


def general_code(half: str, root: Path | None = None) -> list[tuple[str, str]]:
    """(relative path, text) of every module of `half` under `root` (default: the standard library)."""
    if half not in HALVES:
        raise ValueError(f"half must be one of {', '.join(HALVES)}, got {half!r}")
    root = Path(root or stdlib_root())
    docs = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if _SKIP_DIRS.intersection(rel.parts[:-1]) or half_of(str(rel)) != half:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if len(text) >= MIN_CHARS:
            docs.append((str(rel), text))
    return docs
