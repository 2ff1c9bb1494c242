"""Licence detection and the licence gate: SPDX-normalised names, a permissive allowlist.

A project's licence comes, in order, from the config (an override), package metadata (Hex `licenses`,
`mix.exs` `licenses: [...]`, Debian's machine-readable `debian/copyright`), then the text of its LICENSE
file. Anything else is `unknown`, excluded unless the config says otherwise.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

UNKNOWN = "unknown"

# Free-form names seen in mix.exs, Hex metadata and DEP-5 files -> SPDX ids (compared lower-case, without
# spaces, dashes, dots, "license"/"version" and "the").
_ALIASES = {
    "mit": "MIT",
    "expat": "MIT",
    "x11": "X11",
    "apache2": "Apache-2.0",
    "apache20": "Apache-2.0",
    "asl2": "Apache-2.0",
    "asl20": "Apache-2.0",
    "apache": "Apache-2.0",
    "bsd": "BSD-3-Clause",
    "bsd2": "BSD-2-Clause",
    "bsd2clause": "BSD-2-Clause",
    "simplifiedbsd": "BSD-2-Clause",
    "freebsd": "BSD-2-Clause",
    "bsd3": "BSD-3-Clause",
    "bsd3clause": "BSD-3-Clause",
    "newbsd": "BSD-3-Clause",
    "modifiedbsd": "BSD-3-Clause",
    "isc": "ISC",
    "0bsd": "0BSD",
    "unlicense": "Unlicense",
    "cc0": "CC0-1.0",
    "cc010": "CC0-1.0",
    "publicdomain": "CC0-1.0",
    "zlib": "Zlib",
    "boost": "BSL-1.0",
    "bsl10": "BSL-1.0",
    "mpl2": "MPL-2.0",
    "mpl20": "MPL-2.0",
    "mozillapublic20": "MPL-2.0",
    "mozillapublic2": "MPL-2.0",
    "mpl11": "MPL-1.1",
    "epl10": "EPL-1.0",
    "epl20": "EPL-2.0",
    "lgpl21": "LGPL-2.1-only",
    "lgpl21+": "LGPL-2.1-or-later",
    "lgpl3": "LGPL-3.0-only",
    "lgpl3+": "LGPL-3.0-or-later",
    "gpl2": "GPL-2.0-only",
    "gpl2+": "GPL-2.0-or-later",
    "gpl3": "GPL-3.0-only",
    "gpl3+": "GPL-3.0-or-later",
    "agpl3": "AGPL-3.0-only",
    "agpl3+": "AGPL-3.0-or-later",
    "wtfpl": "WTFPL",
}
_NOISE = re.compile(r"licen[cs]es?|version|\bthe\b|\bv(?=\d)|[\s\-_.,()]|only$")

# Licence texts: a few phrases that identify each one (checked in order: the specific before the generic).
_TEXTS = (
    ("Apache-2.0", (r"apache license", r"version 2\.0")),
    ("MPL-2.0", (r"mozilla public license", r"2\.0")),
    ("MPL-2.0", (r"licensed under the mpl 2\.0",)),
    ("MPL-1.1", (r"mozilla public license", r"1\.1")),
    ("GPL-3.0-only", (r"gnu general public license", r"version 3")),
    ("GPL-2.0-only", (r"gnu general public license", r"version 2")),
    ("LGPL-2.1-only", (r"gnu lesser general public license", r"2\.1")),
    ("ISC", (r"permission to use, copy, modify, and(/or)? distribute this software for any purpose",)),
    ("MIT", (r"permission is hereby granted, free of charge", r"without restriction")),
    ("BSD-3-Clause", (r"redistribution and use in source and binary forms", r"neither the name")),
    ("BSD-2-Clause", (r"redistribution and use in source and binary forms",)),
    ("Unlicense", (r"this is free and unencumbered software released into the public domain",)),
    ("CC0-1.0", (r"cc0 1\.0 universal",)),
)
LICENSE_GLOBS = ("LICEN[CS]E*", "COPYING*", "MIT-LICENSE*", "UNLICENSE*")
_MIX_LICENSES = re.compile(r"licen[cs]es:\s*\[([^\]]*)\]")
_QUOTED = re.compile(r'"([^"]+)"')


def normalize(name: str | None) -> str:
    """SPDX id for a free-form licence name or expression (`Apache 2.0` -> `Apache-2.0`); `unknown`."""
    if not name or not name.strip():
        return UNKNOWN
    text = name.strip()
    for sep in (" OR ", " or ", " | ", "/"):
        if sep in text:
            parts = [normalize(p) for p in text.split(sep)]
            return " OR ".join(parts)
    for sep in (" AND ", " and "):
        if sep in text:
            return " AND ".join(normalize(p) for p in text.split(sep))
    key = _NOISE.sub("", text.lower().replace("-or-later", "+").replace("orlater", "+"))
    for candidate in (key, re.sub(r"(?<=\d)0(?=\+?$)", "", key)):  # "gpl30" -> "gpl3"
        if candidate in _ALIASES:
            return _ALIASES[candidate]
    for spdx in set(_ALIASES.values()):
        if spdx.lower() == text.lower():
            return spdx
    return UNKNOWN


def allowed(license_id: str, allow: list[str], *, unknown_ok: bool = False) -> bool:
    """The gate: an OR expression passes when one side does, an AND when every part does."""
    allow_set = {normalize(a) for a in allow} | set(allow)
    if " OR " in license_id:
        return any(allowed(p, allow, unknown_ok=unknown_ok) for p in license_id.split(" OR "))
    if " AND " in license_id:
        return all(allowed(p, allow, unknown_ok=unknown_ok) for p in license_id.split(" AND "))
    if license_id == UNKNOWN:
        return unknown_ok
    return license_id in allow_set


def from_text(text: str) -> str:
    """The licence a LICENSE file's text states, by its identifying phrases; `unknown`."""
    low = re.sub(r"\s+", " ", text[:20000].lower())
    for spdx, phrases in _TEXTS:
        if all(re.search(p, low) for p in phrases):
            return spdx
    return UNKNOWN


def from_mix_exs(text: str) -> str:
    """`licenses: ["Apache-2.0"]` in a mix.exs `package` section."""
    match = _MIX_LICENSES.search(text)
    if not match:
        return UNKNOWN
    names = _QUOTED.findall(match.group(1))
    return " OR ".join(normalize(n) for n in names) if names else UNKNOWN


def detect_project(root: Path) -> str:
    """A project folder's licence: mix.exs metadata, then the text of its LICENSE*/COPYING* files."""
    mix = root / "mix.exs"
    if mix.is_file():
        found = from_mix_exs(mix.read_text(encoding="utf-8", errors="replace"))
        if found != UNKNOWN:
            return found
    for path in sorted({p for g in LICENSE_GLOBS for p in root.glob(g)}):
        if path.is_file():
            found = from_text(path.read_text(encoding="utf-8", errors="replace"))
            if found != UNKNOWN:
                return found
    return UNKNOWN


@dataclass
class Dep5:
    """Debian's machine-readable copyright file: `Files:` globs -> licence; the last match wins."""

    rules: list[tuple[list[str], str]]

    @classmethod
    def parse(cls, text: str) -> Dep5:
        rules: list[tuple[list[str], str]] = []
        for para in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            key = None
            for line in para.splitlines():
                if line[:1] in (" ", "\t"):
                    if key == "files":  # Files: may continue; License: continues with the full text
                        fields[key] += " " + line.strip()
                elif ":" in line:
                    key, _, value = line.partition(":")
                    key = key.strip().lower()
                    fields[key] = value.strip()
            if "files" in fields and "license" in fields:
                rules.append((fields["files"].split(), _dep5_license(fields["license"])))
        return cls(rules)

    def license_of(self, relpath: str, *, catch_all: bool = True) -> str:
        """The licence of the last paragraph whose `Files:` matches (with `catch_all=False`, a bare
        `Files: *` does not count: a project's own licence is more specific than the package default)."""
        found = UNKNOWN
        for patterns, lic in self.rules:
            usable = [p for p in patterns if catch_all or p != "*"]
            if any(fnmatch.fnmatchcase(relpath, p) for p in usable):
                found = lic
        return found


def _dep5_license(value: str) -> str:
    return normalize(re.sub(r"(?i)\bwith\b.*$", "", value).strip())
