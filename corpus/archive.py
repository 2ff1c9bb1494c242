"""Safe archive extraction (tar, tar.gz): nothing is written outside the destination, ever.

Rules, after hex_core's tarball checks and Python's `tarfile` data filter (made stricter): absolute
paths, `..` components, device files and FIFOs are errors; symlinks and hard links are errors (or skipped
and counted, for source trees where a link is harmless to leave out); duplicate names and names that are
not UTF-8 are errors; the compressed size, the decompressed stream (gzip bombs stop at the cap, not after
inflating), every member and the total are capped.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from corpus.errors import UnsafeArchive

MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    compressed: int = 16 * MiB
    uncompressed: int = 128 * MiB
    member: int = 16 * MiB
    members: int = 20_000


DEFAULT_LIMITS = Limits()


@dataclass
class Extracted:
    files: list[str]
    skipped_links: int = 0


def _size(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n / 1024:.0f} KiB"


def inflate(data: bytes, limit: int) -> bytes:
    """Gunzip `data`, stopping with UnsafeArchive as soon as the output passes `limit` (a bomb never
    inflates in full); plain data passes through."""
    if data[:2] != b"\x1f\x8b":
        return data
    out = io.BytesIO()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
            while chunk := gz.read(1 * MiB):
                out.write(chunk)
                if out.tell() > limit:
                    raise UnsafeArchive(
                        f"decompresses past {_size(limit)} (a gzip bomb?)", hint="the archive is refused"
                    )
    except (OSError, EOFError, zlib.error) as exc:
        raise UnsafeArchive(
            f"corrupt gzip stream: {exc}", hint="the archive is truncated or not gzip"
        ) from exc
    return out.getvalue()


def _member_path(name: str) -> PurePosixPath:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeArchive(f"member name {name!r} is not UTF-8", hint="the archive is refused") from None
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"absolute member path {name!r}", hint="the archive is refused")
    path = PurePosixPath(name.replace("\\", "/"))
    if any(part == ".." for part in path.parts):
        raise UnsafeArchive(f"member {name!r} climbs out of the destination", hint="the archive is refused")
    return PurePosixPath(*[p for p in path.parts if p not in (".", "")])


def members(
    data: bytes, limits: Limits = DEFAULT_LIMITS, *, skip_links: bool = False
) -> tuple[dict[str, bytes], int]:
    """The regular files of a tar (or tar.gz) as {path: bytes}, checked against every rule above;
    and how many links were skipped (with `skip_links`)."""
    if len(data) > limits.compressed:
        raise UnsafeArchive(
            f"archive is {_size(len(data))}, over the {_size(limits.compressed)} cap",
            hint="the archive is refused",
        )
    raw = inflate(data, limits.uncompressed)
    out: dict[str, bytes] = {}
    seen: set[str] = set()
    total = links = 0
    try:
        with tarfile.open(
            fileobj=io.BytesIO(raw), mode="r:", encoding="utf-8", errors="surrogateescape"
        ) as tar:
            for count, info in enumerate(tar, start=1):
                if count > limits.members:
                    raise UnsafeArchive(f"more than {limits.members} members", hint="the archive is refused")
                path = _member_path(info.name)
                key = path.as_posix()
                if key in seen and key:
                    raise UnsafeArchive(f"duplicate member {key!r}", hint="the archive is refused")
                seen.add(key)
                if info.issym() or info.islnk():
                    if skip_links:
                        links += 1
                        continue
                    raise UnsafeArchive(
                        f"link member {key!r} -> {info.linkname!r}", hint="the archive is refused"
                    )
                if info.isdev() or info.isfifo():
                    raise UnsafeArchive(f"device or FIFO member {key!r}", hint="the archive is refused")
                if info.isdir():
                    continue
                if not info.isfile():
                    raise UnsafeArchive(
                        f"member {key!r} is not a regular file", hint="the archive is refused"
                    )
                if info.size > limits.member:
                    raise UnsafeArchive(
                        f"member {key!r} is {_size(info.size)}, over the {_size(limits.member)} cap",
                        hint="the archive is refused",
                    )
                total += info.size
                if total > limits.uncompressed:
                    raise UnsafeArchive(
                        f"members add up past {_size(limits.uncompressed)}", hint="the archive is refused"
                    )
                f = tar.extractfile(info)
                body = f.read() if f is not None else b""
                if len(body) != info.size:
                    raise UnsafeArchive(f"member {key!r} is truncated", hint="the archive is refused")
                out[key] = body
    except tarfile.TarError as exc:
        raise UnsafeArchive(
            f"not a valid tar archive: {exc}", hint="the archive is truncated or corrupt"
        ) from exc
    return out, links


def extract(
    data: bytes, dest: Path, limits: Limits = DEFAULT_LIMITS, *, skip_links: bool = False
) -> Extracted:
    """Check everything first (`members`), then write the files under `dest`: all or nothing."""
    files, links = members(data, limits, skip_links=skip_links)
    write_members(files, dest)
    return Extracted(sorted(files), links)


def write_members(files: dict[str, bytes], dest: Path) -> None:
    """Write checked members under `dest` (each target re-checked to stay inside it)."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    for key, body in files.items():
        target = (root / key).resolve()
        if root not in target.parents:
            raise UnsafeArchive(f"member {key!r} resolves outside the destination", hint="refused")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
