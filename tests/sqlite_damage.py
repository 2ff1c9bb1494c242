"""Damage a real SQLite file the way a bad disk sector or an interrupted copy does (tests of salvage)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def page_size(path: Path) -> int:
    # The header's big-endian page size at offset 16 (1 means 65536); read raw so a damaged file works.
    raw = int.from_bytes(path.read_bytes()[16:18], "big")
    return 65536 if raw == 1 else raw


def page_holding(path: Path, marker: bytes) -> int:
    """The 1-based number of the page whose bytes contain `marker` (a value stored in one row)."""
    data, size = path.read_bytes(), page_size(path)
    at = data.find(marker)
    if at < 0:
        raise AssertionError(f"{marker!r} is not in {path}")
    return at // size + 1


def garble_page(path: Path, page: int, fill: bytes = b"\xa5") -> None:
    """Overwrite one whole page with garbage bytes, in place."""
    size = page_size(path)
    with open(path, "r+b") as f:
        f.seek((page - 1) * size)
        f.write(fill * size)


def last_page(path: Path) -> int:
    return path.stat().st_size // page_size(path)


def checkpoint(path: Path) -> None:
    """Fold the WAL into the main file, so the damage a test writes there is what SQLite reads."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def last_page_of(path: Path, name: str) -> int:
    """The highest-numbered page of table or index `name` (where its newest entries go), via dbstat."""
    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT max(pageno) FROM dbstat WHERE name = ?", (name,)).fetchone()
    finally:
        db.close()
    if row is None or row[0] is None:
        raise AssertionError(f"{name} has no pages in {path}")
    return int(row[0])
