"""A config source -> the local folders it stands for (one per project for Hex and GitHub)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from corpus import licenses
from corpus.config import SourceConfig
from corpus.errors import CorpusError, FetchError, SourceError

T = TypeVar("T")


@dataclass
class Fetched:
    """One unit to collect: a folder, its label (provenance `source`) and what is known of it."""

    label: str
    root: Path
    version: str | None = None
    license: str | None = None  # from metadata (Hex, GitHub) or the config's override
    dep5: licenses.Dep5 | None = None
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)


def git_head(root: Path) -> str | None:
    """The commit a git checkout is at (its provenance `version`), or None for a plain folder."""
    if not (root / ".git").exists() or shutil.which("git") is None:
        return None
    proc = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def fetch_each(
    items: Iterable[T], fetch_one: Callable[[T], Fetched], label: Callable[[T], str]
) -> tuple[list[Fetched], list[dict]]:
    """Fetch every item: one that is bad (a CorpusError: checksum, unsafe archive...) is skipped with its
    reason; a server that keeps failing (FetchError) stops the whole build with a clear error."""
    units, skipped = [], []
    items = list(items)
    for item in tqdm(items, desc="fetch", unit="unit", disable=len(items) < 2, leave=False):
        try:
            units.append(fetch_one(item))
        except FetchError:
            raise
        except CorpusError as exc:
            skipped.append({"label": label(item), "reason": exc.message})
    return units, skipped


def fetch(src: SourceConfig, cache: Path) -> tuple[list[Fetched], list[dict]]:
    """Fetch (or find in the cache) what `src` names: the units, and those skipped with a reason."""
    if src.kind == "dir":
        root = Path(src.path or ".")
        if not root.is_dir():
            raise SourceError(f"source folder {root} does not exist", hint="fix `path:` in the config")
        unit = Fetched(src.label, root, version=git_head(root), include=src.include, exclude=src.exclude)
        return [unit], []
    if src.kind == "debian":
        from corpus.sources import debian

        tree, version = debian.fetch(src.name or "", cache)
        return [
            Fetched(
                src.label,
                tree,
                version=version,
                license=src.license,
                dep5=debian.dep5(tree),
                include=src.include,
                exclude=src.exclude,
            )
        ], []
    if src.kind == "hex":
        from corpus.sources import hex as hexpm

        units, skipped = hexpm.fetch_source(src, cache)
    else:
        from corpus.sources import github

        units, skipped = github.fetch_source(src, cache)
    for unit in units:  # the config's globs apply inside every package or repository
        unit.include, unit.exclude = list(src.include), list(src.exclude)
    return units, skipped
