"""Numbered SQLite migrations (potion.sqlite_migrations), shared by the history and telemetry stores."""

from __future__ import annotations

import sqlite3

import pytest

from potion.errors import DatabaseTooNew
from potion.sqlite_migrations import migrate, schema_version

MIGRATIONS = [
    "CREATE TABLE t (a INTEGER);",
    "ALTER TABLE t ADD COLUMN b TEXT NOT NULL DEFAULT 'x';",
]


def test_a_new_database_gets_every_step_and_a_second_run_changes_nothing(tmp_path) -> None:
    db = sqlite3.connect(tmp_path / "s.sqlite3")
    assert migrate(db, MIGRATIONS) == 2 and schema_version(db) == 2
    db.execute("INSERT INTO t (a) VALUES (1)")
    db.commit()
    assert migrate(db, MIGRATIONS) == 2
    assert db.execute("SELECT a, b FROM t").fetchall() == [(1, "x")]


def test_an_old_database_is_upgraded_in_place(tmp_path) -> None:
    db = sqlite3.connect(tmp_path / "s.sqlite3")
    migrate(db, MIGRATIONS[:1])
    db.execute("INSERT INTO t (a) VALUES (7)")
    db.commit()
    assert migrate(db, MIGRATIONS) == 2
    assert db.execute("SELECT a, b FROM t").fetchall() == [(7, "x")]


def test_a_failing_step_is_rolled_back_with_its_version(tmp_path) -> None:
    db = sqlite3.connect(tmp_path / "s.sqlite3")
    with pytest.raises(sqlite3.Error):
        migrate(db, [*MIGRATIONS, "CREATE TABLE u (x); INSERT INTO nowhere VALUES (1);"])
    assert schema_version(db) == 2  # the first two steps stay; the broken third left nothing behind
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'u'").fetchall() == []


def test_a_database_from_a_newer_potion_is_refused_untouched(tmp_path) -> None:
    db = sqlite3.connect(tmp_path / "s.sqlite3")
    db.execute("PRAGMA user_version = 9")
    with pytest.raises(DatabaseTooNew) as info:
        migrate(db, MIGRATIONS, name="test store")
    assert "test store has schema version 9" in info.value.user_message()
    assert schema_version(db) == 9
