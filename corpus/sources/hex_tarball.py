"""Hex package tarballs (hex_core's format, version 3): checked and unpacked without trusting them.

    outer tar: VERSION ("3"), CHECKSUM (sha256 of VERSION+metadata.config+contents.tar.gz, hex),
               metadata.config (Erlang terms), contents.tar.gz (the package files)

The outer checksum (sha256 of the whole tarball) is compared with the registry's; hex digits compare
case-insensitively and must be 64 long. Missing or extra members, another VERSION, a bad inner
checksum, metadata that is not data terms, and a corrupt or unsafe contents.tar.gz are all errors.
`requirements` comes in two shapes (a list of `{Name, Props}`, or the older list of proplists with a
`name`), and old metadata may be Latin-1: both are read.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from corpus import archive
from corpus.erlang_terms import consult
from corpus.errors import HexTarballError, UnsafeArchive

MEMBERS = ("VERSION", "CHECKSUM", "metadata.config", "contents.tar.gz")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass
class HexPackage:
    name: str
    version: str
    licenses: list[str]
    requirements: list[dict]
    metadata: dict
    files: dict[str, bytes] = field(repr=False, default_factory=dict)


def check_checksum(expected: str, actual_hex: str, what: str) -> None:
    text = expected.strip()
    if not _HEX64.match(text):
        raise HexTarballError(
            f"{what} {text[:80]!r} is not 64 hex digits", hint="the registry entry is malformed"
        )
    if text.lower() != actual_hex.lower():
        raise HexTarballError(
            f"{what} mismatch: expected {text.lower()}, got {actual_hex.lower()}",
            hint="the download is corrupt or tampered with; it was not used",
        )


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # metadata written by old Hex versions


def _proplist(value) -> dict:  # noqa: ANN001
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, list) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        return {str(k): v for k, v in value}
    return {}


def requirements(value) -> list[dict]:  # noqa: ANN001
    """Both shapes -> [{name, app, requirement, optional, repository}]."""
    out = []
    items = value.items() if isinstance(value, dict) else value or []
    for item in items:
        if (
            isinstance(item, tuple)
            and len(item) == 2
            and isinstance(item[0], str)
            and not isinstance(item[1], str)
        ):
            name, props = item[0], _proplist(item[1])  # {<<"decimal">>, [{<<"app">>, ...}, ...]}
        else:
            props = _proplist(item)  # [{<<"name">>, <<"decimal">>}, {<<"app">>, ...}, ...]
            name = props.get("name")
        if not name:
            raise HexTarballError(f"metadata.config: requirement without a name: {item!r}", hint="malformed")
        out.append(
            {
                "name": str(name),
                "app": str(props.get("app", name)),
                "requirement": str(props.get("requirement", "")),
                "optional": props.get("optional") in (True, "true"),
                "repository": str(props.get("repository", "hexpm")),
            }
        )
    return out


def unpack(
    data: bytes, *, outer_checksum: str | None = None, limits: archive.Limits = archive.DEFAULT_LIMITS
) -> HexPackage:
    """Check and read a Hex tarball; HexTarballError or UnsafeArchive say what is wrong."""
    if outer_checksum is not None:
        check_checksum(outer_checksum, hashlib.sha256(data).hexdigest(), "outer checksum")
    outer, _ = archive.members(data, limits)
    missing = [m for m in MEMBERS if m not in outer]
    extra = sorted(set(outer) - set(MEMBERS))
    if missing or extra:
        raise HexTarballError(
            "tarball members are wrong: "
            + "; ".join(
                filter(
                    None, [missing and f"missing {', '.join(missing)}", extra and f"extra {', '.join(extra)}"]
                )
            ),
            hint="not a Hex package tarball (hex_core format 3)",
        )
    version = outer["VERSION"].strip()
    if version != b"3":
        raise HexTarballError(
            f"tarball VERSION is {version[:20]!r}, not 3", hint="unsupported Hex tarball format"
        )
    inner = hashlib.sha256(outer["VERSION"] + outer["metadata.config"] + outer["contents.tar.gz"]).hexdigest()
    check_checksum(outer["CHECKSUM"].decode("ascii", "replace"), inner, "inner CHECKSUM")
    terms = consult(_text(outer["metadata.config"]))
    meta: dict = {}
    for term in terms:
        if isinstance(term, tuple) and len(term) == 2:
            meta[str(term[0])] = term[1]
    if "name" not in meta or "version" not in meta:
        raise HexTarballError("metadata.config lacks name or version", hint="not a Hex package tarball")
    try:
        files, _ = archive.members(outer["contents.tar.gz"], limits)
    except UnsafeArchive as exc:
        raise HexTarballError(
            f"contents.tar.gz: {exc.message}", hint=exc.hint or "the package is refused"
        ) from exc
    licenses = meta.get("licenses") or []
    return HexPackage(
        name=str(meta["name"]),
        version=str(meta["version"]),
        licenses=[str(x) for x in licenses] if isinstance(licenses, list) else [str(licenses)],
        requirements=requirements(meta.get("requirements")),
        metadata=meta,
        files=files,
    )
