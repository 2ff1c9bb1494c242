"""A config source -> the local folders it stands for (one per project for Hex and GitHub)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from corpus import licenses
from corpus.config import SourceConfig
from corpus.errors import SourceError


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


def fetch(src: SourceConfig, cache: Path) -> tuple[list[Fetched], list[dict]]:
    """Fetch (or find in the cache) what `src` names: the units, and those skipped with a reason."""
    if src.kind == "dir":
        root = Path(src.path or ".")
        if not root.is_dir():
            raise SourceError(f"source folder {root} does not exist", hint="fix `path:` in the config")
        return [Fetched(src.label, root, license=src.license, include=src.include, exclude=src.exclude)], []
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

        return hexpm.fetch_source(src, cache)
    from corpus.sources import github

    return github.fetch_source(src, cache)
