"""potion.sqlite_salvage on real files damaged on disk: a garbage page, a truncated file, a 0-byte file,
a file that is not a database, an older and a newer schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from potion.errors import DatabaseTooNew
from potion.sqlite_migrations import migrate
from potion.sqlite_salvage import is_damage, salvage
from tests.sqlite_damage import garble_page, last_page, page_holding

MIGRATIONS = [
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
    """
    ALTER TABLE notes ADD COLUMN tag TEXT NOT NULL DEFAULT 'plain';
    CREATE TABLE events (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
    CREATE INDEX events_n ON events (n);
    """,
]
ROWS = 2000


def body(i: int) -> str:
    return f"note-{i:05d}-" + "elixir " * 12


def make(path: Path, *, version: int = len(MIGRATIONS), rows: int = ROWS) -> None:
    db = sqlite3.connect(path)
    migrate(db, MIGRATIONS[:version])
    db.executemany("INSERT INTO notes (id, body) VALUES (?, ?)", [(i, body(i)) for i in range(1, rows + 1)])
    if version >= 2:
        db.executemany("INSERT INTO events VALUES (?, ?)", [(f"event-{i:04d}", i) for i in range(300)])
    db.commit()
    db.close()


def notes(path: Path) -> dict[int, str]:
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return dict(db.execute("SELECT id, body FROM notes"))
    finally:
        db.close()


def test_a_garbage_page_loses_only_its_own_rows(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    make(path)
    garble_page(path, page_holding(path, b"note-01000-"))
    with pytest.raises(sqlite3.DatabaseError, match="malformed"):  # what the store sees today
        sqlite3.connect(path).execute("SELECT count(*) FROM notes").fetchone()

    report = salvage(path, MIGRATIONS, name="test store")

    kept = notes(path)
    assert 1000 not in kept and 1 in kept and ROWS in kept
    assert all(text == body(i) for i, text in kept.items())  # every saved row is intact
    lost = ROWS - len(kept)
    assert 0 < lost < 60, lost  # one page of ~120-byte rows
    assert report.tables["notes"].saved == len(kept) and report.tables["notes"].lost == lost
    assert report.tables["events"].saved == 300 and not report.uncounted
    assert report.describe() == f"saved {len(kept) + 300:,} rows, lost {lost}"
    # The damaged file is kept, as it was, beside the fresh one.
    assert report.kept_as.parent == tmp_path and report.kept_as.name.startswith("store.sqlite3.corrupt-")
    assert b"\xa5" * 1024 in report.kept_as.read_bytes()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("SELECT count(*) FROM notes WHERE tag = 'plain'").fetchone()[0] == len(kept)
    assert "events_n" in {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def test_a_garbage_last_page_keeps_the_rows_before_it_and_says_the_rest_are_uncounted(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    make(path, version=1)
    page = page_holding(path, f"note-{ROWS:05d}-".encode())
    assert page == last_page(path)
    garble_page(path, page)

    report = salvage(path, MIGRATIONS)

    kept = notes(path)
    assert ROWS - 60 < len(kept) < ROWS and max(kept) < ROWS
    assert sorted(kept) == list(range(1, len(kept) + 1))  # everything up to the bad page
    assert report.uncounted and "uncounted" in report.describe()


def test_a_truncated_file_keeps_the_rows_of_its_first_half(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    make(path, version=1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    report = salvage(path, MIGRATIONS)

    kept = notes(path)
    assert ROWS // 4 < len(kept) < ROWS and report.saved == len(kept)
    assert report.kept_as.stat().st_size == len(data) // 2


def test_an_empty_file_is_reported_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    path.write_bytes(b"")
    report = salvage(path, MIGRATIONS)
    assert report.describe() == "the file was empty (0 bytes), nothing to recover"
    assert report.kept_as.exists() and report.kept_as.stat().st_size == 0
    assert notes(path) == {}


def test_a_file_that_is_not_a_database_is_kept_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    path.write_bytes(b"not a database, just text\n" * 400)
    report = salvage(path, MIGRATIONS)
    assert report.describe() == "no rows could be read"
    assert report.kept_as.read_bytes().startswith(b"not a database")
    assert notes(path) == {}
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_a_database_from_a_newer_schema_is_refused_and_left_in_place(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    make(path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 9")
    db.close()
    before = path.read_bytes()
    with pytest.raises(DatabaseTooNew, match="schema version 9"):
        salvage(path, MIGRATIONS)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["store.sqlite3"]


def test_two_salvages_keep_both_damaged_copies(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    path.write_bytes(b"garbage one" * 100)
    first = salvage(path, MIGRATIONS)
    path.write_bytes(b"garbage two" * 100)
    second = salvage(path, MIGRATIONS)
    assert first.kept_as != second.kept_as
    assert first.kept_as.read_bytes().startswith(b"garbage one")
    assert second.kept_as.read_bytes().startswith(b"garbage two")


def test_damage_is_told_apart_from_a_lock() -> None:
    assert is_damage(sqlite3.DatabaseError("database disk image is malformed"))
    assert is_damage(sqlite3.DatabaseError("file is not a database"))
    assert not is_damage(sqlite3.OperationalError("database is locked"))
    assert not is_damage(sqlite3.OperationalError("database or disk is full"))
    assert not is_damage(sqlite3.OperationalError("attempt to write a readonly database"))
    assert not is_damage(OSError("no"))
