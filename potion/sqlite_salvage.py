"""Salvage the readable rows of a damaged SQLite store into a fresh one (chat history, telemetry, ...).

`salvage(path, MIGRATIONS)` moves the damaged file aside (with its `-wal`/`-shm`: user data is never
deleted), builds a new database with the store's numbered migrations, and copies every row SQLite can
still read. Rows are read per table in rowid ranges, ascending and descending, and a range that fails is
split in two until the failing rowids are isolated, so one bad page loses only the rows it held. The new
file is written under a temporary name and published with `os.replace`, so a crash mid-salvage leaves
the damaged copy and no half-built database. The returned `SalvageReport` says how many rows were saved
and lost, in one line for the caller's message.

What cannot be counted is said so: rows on a damaged first or last page of a table (nothing readable
bounds them), or a whole table whose root page is gone.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from potion.errors import DatabaseTooNew
from potion.sqlite_migrations import migrate

try:  # advisory lock so two processes do not salvage the same file at once (POSIX only)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_LOWEST, _HIGHEST = -(2**63), 2**63 - 1
# A failing rowid range bounded by readable rows on both sides is split down to single rowids to count
# what is lost; past this width (or this many splits per table) the loss is reported as uncounted.
_MAX_GAP = 1 << 16
_MAX_SPLITS = 200_000
_BATCH = 500


@dataclass
class TableSalvage:
    saved: int = 0
    lost: int = 0  # rowids on unreadable pages (an upper bound: a deleted row's rowid counts too)
    uncounted: bool = False  # some rows could not even be counted (first/last page, table root)


@dataclass
class SalvageReport:
    """What `salvage` did: the fresh database is at `path`, the damaged one was moved to `kept_as`."""

    path: Path
    kept_as: Path
    source_bytes: int
    tables: dict[str, TableSalvage] = field(default_factory=dict)

    @property
    def saved(self) -> int:
        return sum(t.saved for t in self.tables.values())

    @property
    def lost(self) -> int:
        return sum(t.lost for t in self.tables.values())

    @property
    def uncounted(self) -> bool:
        return any(t.uncounted for t in self.tables.values())

    def describe(self) -> str:
        """One clause for the caller's message: "saved 1,998 rows, lost 2", "the file was empty", ..."""
        if self.source_bytes == 0:
            return "the file was empty (0 bytes), nothing to recover"
        if not self.saved and (self.uncounted or not self.tables):
            return "no rows could be read"
        text = f"saved {self.saved:,} row{'s' if self.saved != 1 else ''}"
        if self.lost:
            text += f", lost {self.lost:,}"
        if self.uncounted:
            text += ", and an uncounted number on unreadable pages were lost"
        elif not self.lost:
            text += ", lost none"
        return text


def is_damage(exc: BaseException) -> bool:
    """Whether a SQLite error means the file is damaged (as opposed to locked, read-only or full)."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    text = str(exc).lower()
    if "locked" in text or "busy" in text or "readonly" in text or "unable to open" in text:
        return False
    if "full" in text or "disk i/o" in text:  # the disk, not the file: salvaging would not help
        return False
    damage_words = ("malformed", "not a database", "corrupt", "encrypted")
    return any(word in text for word in damage_words) or type(exc) is sqlite3.DatabaseError


def integrity_problem(db: sqlite3.Connection) -> str | None:
    """None when `PRAGMA quick_check` finds every page sound, else its findings on one line.

    Raises `sqlite3.DatabaseError` when the check cannot even start (not a database).
    """
    rows = [str(r[0]) for r in db.execute("PRAGMA quick_check").fetchall()]
    if rows == ["ok"]:
        return None
    found = [line.strip() for row in rows for line in row.splitlines()]
    return "; ".join(line for line in found if line and not line.startswith("***")) or "unknown damage"


def kept_name(path: Path, label: str = "corrupt") -> Path:
    """A free name beside `path` for the damaged copy: `NAME.corrupt-YYYYmmdd-HHMMSS[-N]`."""
    base = f"{path.name}.{label}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, n = path.with_name(base), 1
    while candidate.exists() or candidate.with_name(candidate.name + "-wal").exists():
        n += 1
        candidate = path.with_name(f"{base}-{n}")
    return candidate


def move_aside(path: Path, label: str = "corrupt") -> Path:
    """Rename `path` and its `-wal`/`-shm` to a free `kept_name`; returns the new name."""
    kept = kept_name(path, label)
    path.rename(kept)
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            extra.rename(kept.with_name(kept.name + suffix))
    return kept


@contextmanager
def _salvage_lock(path: Path) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    with open(path.with_name(f".{path.name}.salvage.lock"), "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def salvage(path: Path | str, migrations: Sequence[str], *, name: str = "database") -> SalvageReport:
    """Move the damaged database at `path` aside and rebuild it from its readable rows.

    Works on any damage: corrupt pages, a truncated file, a 0-byte file, a file that is not a database.
    Raises `DatabaseTooNew` (and moves nothing) when the file is readable enough to show a schema
    version newer than `migrations`, and `OSError` when the directory cannot be written.
    """
    path = Path(path)
    with _salvage_lock(path), tempfile.TemporaryDirectory(prefix=".salvage-", dir=path.parent) as scratch:
        # Read from a scratch copy: opening the damaged file itself could checkpoint its WAL into it.
        source = Path(scratch) / "damaged.sqlite3"
        size = path.stat().st_size
        shutil.copyfile(path, source)
        wal = path.with_name(path.name + "-wal")
        if wal.exists():
            shutil.copyfile(wal, source.with_name(source.name + "-wal"))
        src = sqlite3.connect(source)
        try:
            src.text_factory = lambda raw: raw.decode("utf-8", "replace")  # garbled text, still a row
            # A truncated file has fewer pages than its header says; SQLite refuses it unless told
            # to trust the file size, which writable_schema does (nothing is written to the copy).
            src.execute("PRAGMA writable_schema = ON")
            version = _read_version(src)
            if version is not None and version > len(migrations):
                raise DatabaseTooNew(
                    f"the {name} has schema version {version}, newer than this Potion's {len(migrations)}",
                    hint="upgrade Potion, or move the file away to start a new one",
                )
            fresh_path = Path(scratch) / "fresh.sqlite3"
            fresh = sqlite3.connect(fresh_path)
            try:
                # Copy into the schema the rows were written for, then bring them up to date the usual way.
                at = version if version else len(migrations)
                migrate(fresh, migrations[:at], name=name)
                tables = _copy_all(src, fresh)
                migrate(fresh, migrations, name=name)
            finally:
                fresh.close()
        finally:
            src.close()
        kept = move_aside(path)
        os.replace(fresh_path, path)
    return SalvageReport(path, kept, size, tables)


def _read_version(src: sqlite3.Connection) -> int | None:
    try:
        return int(src.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError:
        return None


def _copy_all(src: sqlite3.Connection, fresh: sqlite3.Connection) -> dict[str, TableSalvage]:
    wanted = [
        r[0]
        for r in fresh.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
        )
    ]
    try:
        present = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError:  # not a database, or its schema page is gone: nothing is readable
        return {table: TableSalvage(uncounted=True) for table in wanted}
    report: dict[str, TableSalvage] = {}
    for table in wanted:
        if table in present:
            report[table] = _copy_table(src, fresh, table)
    fresh.commit()
    return report


def _columns(db: sqlite3.Connection, table: str) -> list[tuple[str, bool]]:
    """(name, is the rowid alias) of each column."""
    rows = db.execute(f'PRAGMA table_info("{table}")').fetchall()
    pks = [r for r in rows if r[5]]
    alias = pks[0][1] if len(pks) == 1 and str(pks[0][2]).upper() == "INTEGER" else None
    return [(r[1], r[1] == alias) for r in rows]


def _copy_table(src: sqlite3.Connection, fresh: sqlite3.Connection, table: str) -> TableSalvage:
    result = TableSalvage()
    try:
        src_columns = {n for n, _ in _columns(src, table)}
        src.execute(f'SELECT rowid FROM "{table}" LIMIT 0')
    except sqlite3.DatabaseError:  # a WITHOUT ROWID table: none in Potion's stores
        result.uncounted = True
        return result
    columns = [(n, alias) for n, alias in _columns(fresh, table) if n in src_columns]
    names = [n for n, _ in columns]
    has_alias = any(alias for _, alias in columns)
    selected = ", ".join(["rowid"] + [f'"{n}"' for n in names])
    select = f'SELECT {selected} FROM "{table}" WHERE rowid BETWEEN ? AND ? ORDER BY rowid'
    targets = names if has_alias else ["rowid", *names]
    insert = (
        f'INSERT OR IGNORE INTO "{table}" ({", ".join(f"{chr(34)}{t}{chr(34)}" for t in targets)})'
        f" VALUES ({', '.join('?' * len(targets))})"
    )

    def save(rows: list[tuple]) -> None:
        if not rows:
            return
        before = fresh.total_changes
        fresh.executemany(insert, [row[1:] if has_alias else row for row in rows])
        saved = fresh.total_changes - before
        result.saved += saved
        result.lost += len(rows) - saved  # a garbled row that breaks a constraint

    def read(a: int, b: int, descending: bool) -> tuple[int | None, bool]:
        """Save the rows of [a, b] in one direction until an error; (last rowid read, whole range read)."""
        last, batch = None, []
        try:
            for row in src.execute(select + (" DESC" if descending else ""), (a, b)):
                batch.append(row)
                last = row[0]
                if len(batch) >= _BATCH:
                    save(batch)
                    batch = []
            return last, True
        except sqlite3.DatabaseError:
            return last, False
        finally:
            save(batch)

    low, high = _bound(src, table, "min"), _bound(src, table, "max")
    if "empty" in (low, high):  # min/max read the table's end pages and found no row
        return result
    # (first, last, first is unbounded, last is unbounded): an end is unbounded when min/max failed.
    stack = [
        (
            low if isinstance(low, int) else _LOWEST,
            high if isinstance(high, int) else _HIGHEST,
            not isinstance(low, int),
            not isinstance(high, int),
        )
    ]
    splits = 0
    while stack:
        a, b, open_low, open_high = stack.pop()
        if a > b:
            continue
        last, whole = read(a, b, descending=False)
        if whole:
            continue
        if last is not None:
            a, open_low = last + 1, False
        last, whole = read(a, b, descending=True)
        if last is not None:
            b, open_high = last - 1, False
        if whole or a > b:
            continue
        if open_low or open_high or b - a >= _MAX_GAP or splits >= _MAX_SPLITS:
            result.uncounted = True  # nothing readable bounds these rows: they cannot be counted
            continue
        if a == b:
            result.lost += 1
            continue
        splits += 1
        middle = (a + b) // 2
        stack.append((middle + 1, b, False, False))
        stack.append((a, middle, False, False))
    return result


def _bound(src: sqlite3.Connection, table: str, which: str) -> int | str | None:
    """min/max rowid; "empty" for an empty table, None when the page holding it cannot be read."""
    try:
        value = src.execute(f'SELECT {which}(rowid) FROM "{table}"').fetchone()[0]
    except sqlite3.DatabaseError:
        return None
    return "empty" if value is None else int(value)
