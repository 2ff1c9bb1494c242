"""Debian source packages (`apt-get source NAME`), unpacked once into the cache.

Debian's archive is the one code host reachable here; `elixir-lang` and `rabbitmq-server` (its Elixir CLI
and Elixir dependencies) are the real offline corpus. `debian/copyright` (DEP-5) gives per-file licences.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from corpus import licenses
from corpus.errors import SourceError

DEB_SRC = """Types: deb-src
URIs: http://deb.debian.org/debian
Suites: {suite}
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
SOURCES_FILE = Path("/etc/apt/sources.list.d/potion-deb-src.sources")


def _has_deb_src() -> bool:
    files = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        if re.search(r"^(deb-src\s|Types:.*deb-src)", text, re.M):
            return True
    return False


def _suite() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip() or "bookworm"
    except OSError:
        pass
    return "bookworm"


def ensure_deb_src() -> None:
    """Add a deb-src entry for Debian's archive when there is none (as root), like
    scripts/fetch-elixir-source.sh."""
    if _has_deb_src():
        return
    if os.geteuid() != 0:
        raise SourceError(
            "apt has no deb-src entry, so `apt-get source` cannot fetch packages",
            hint=f"as root, write {SOURCES_FILE} (see scripts/fetch-elixir-source.sh) and run apt-get update",
        )
    SOURCES_FILE.write_text(DEB_SRC.format(suite=_suite()))
    _run(["apt-get", "update", "-q"], cwd=Path("/"))


def _run(cmd: list[str], cwd: Path) -> str:
    if shutil.which(cmd[0]) is None:
        raise SourceError(f"`{cmd[0]}` is not installed", hint="run `make system-deps` (Debian/Ubuntu)")
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise SourceError(
            f"`{' '.join(cmd)}` failed: {' / '.join(tail)}", hint="check apt's sources and network"
        )
    return proc.stdout


def fetch(name: str, cache: Path) -> tuple[Path, str]:
    """The unpacked source tree of Debian package `name` and its version, fetched once into `cache`."""
    dest = cache / "debian" / name
    done = dest / ".potion-version"
    if done.is_file():
        return dest / "src", done.read_text().strip()
    ensure_deb_src()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{name}-") as tmp:
        work = Path(tmp)
        try:
            _run(["apt-get", "source", "-q", "--download-only", name], cwd=work)
        except SourceError:
            _run(["apt-get", "update", "-q"], cwd=Path("/"))  # stale lists: one refresh, then once more
            _run(["apt-get", "source", "-q", "--download-only", name], cwd=work)
        dscs = sorted(glob.glob(str(work / "*.dsc")))
        if not dscs:
            raise SourceError(f"apt-get source {name} gave no .dsc", hint="is it a source package name?")
        version = "unknown"
        for line in Path(dscs[0]).read_text(errors="replace").splitlines():
            if line.startswith("Version:"):
                version = line.split(":", 1)[1].strip()
        _run(["dpkg-source", "-x", "--no-check", dscs[0], "src"], cwd=work)
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir()
        os.replace(work / "src", dest / "src")
        done.write_text(version)  # written last: a half-unpacked tree is never taken for a finished one
    return dest / "src", version


def dep5(tree: Path) -> licenses.Dep5 | None:
    path = tree / "debian" / "copyright"
    if not path.is_file():
        return None
    return licenses.Dep5.parse(path.read_text(encoding="utf-8", errors="replace"))
