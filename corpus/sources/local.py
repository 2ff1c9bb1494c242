"""Files of a local folder: Mix projects (umbrella apps, `deps/` each with its own licence), OTP
applications, git checkouts. Symlinks are never followed; build outputs and VCS folders are skipped."""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path

from corpus import licenses

SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", "_build", "node_modules", ".elixir_ls", "cover", "doc", ".cache"}
)
_APP_DIR = re.compile(r"(?:^|/)(?:lib|apps|deps)/([^/]+)/(?:lib|test|src|mix\.exs)(?:/|$)")
_MARKERS = ("mix.exs", "rebar.config")


@dataclass(frozen=True)
class FileItem:
    """A file to process, with its provenance."""

    source: str
    project: str
    license: str
    path: str  # relative to the source root
    abspath: str


def _matches(rel: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(rel, p) for p in patterns)


def walk(root: Path, extensions: list[str], include: list[str], exclude: list[str]) -> list[str]:
    """Relative paths (sorted) of regular files under `root` with one of `extensions`."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in filenames:
            if not any(name.endswith(ext) for ext in extensions):
                continue
            full = Path(dirpath) / name
            if full.is_symlink() or not full.is_file():
                continue
            rel = full.relative_to(root).as_posix()
            if include and not _matches(rel, include):
                continue
            if exclude and _matches(rel, exclude):
                continue
            out.append(rel)
    return sorted(out)


def project_root(root: Path, rel: str) -> str:
    """The folder (relative, '' for the root) of the project a file belongs to: the nearest Mix/rebar
    project above it, else an OTP application folder (`lib/NAME/lib`, `apps/NAME`, `deps/NAME`)."""
    parts = rel.split("/")[:-1]
    for i in range(len(parts), 0, -1):
        folder = "/".join(parts[:i])
        if any((root / folder / m).is_file() for m in _MARKERS):
            return folder
    matches = list(_APP_DIR.finditer(rel))  # the innermost application folder
    return rel[: matches[-1].end(1)] if matches else ""


def _is_dep(folder: str) -> bool:
    return folder.startswith("deps/") or "/deps/" in folder


def collect(
    root: Path,
    *,
    label: str,
    extensions: list[str],
    include: list[str] = (),  # type: ignore[assignment]
    exclude: list[str] = (),  # type: ignore[assignment]
    license_override: str | None = None,
    default_license: str | None = None,
    dep5: licenses.Dep5 | None = None,
) -> list[FileItem]:
    """Every candidate file of `root` with its project and licence (see `corpus.licenses`)."""
    root = root.resolve()
    if license_override:
        root_license = licenses.normalize(license_override)
    else:
        root_license = licenses.detect_project(root)
        if root_license == licenses.UNKNOWN and default_license:
            root_license = licenses.normalize(default_license)
    project_licenses: dict[str, str] = {}
    items = []
    for rel in walk(root, extensions, list(include), list(exclude)):
        folder = project_root(root, rel)
        if folder not in project_licenses:
            own = licenses.detect_project(root / folder) if folder else licenses.UNKNOWN
            if _is_dep(folder):
                project_licenses[folder] = own  # a dependency keeps its own licence, never its host's
            elif license_override or own == licenses.UNKNOWN:
                project_licenses[folder] = root_license
            else:
                project_licenses[folder] = own
        lic = project_licenses[folder]
        if dep5 is not None:
            # Debian's per-path paragraphs win; its `Files: *` default only fills in an unknown licence
            specific = dep5.license_of(rel, catch_all=False)
            if specific != licenses.UNKNOWN:
                lic = specific
            elif lic == licenses.UNKNOWN:
                lic = dep5.license_of(rel)
        name = folder.rsplit("/", 1)[-1] if folder else ""
        project = f"{label}/{name}" if name else label
        items.append(FileItem(label, project, lic, rel, str(root / rel)))
    return items
