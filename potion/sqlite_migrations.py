"""Numbered SQLite migrations, one helper for every local store (chat history, telemetry, ...).

A store lists its schema as `MIGRATIONS`: `MIGRATIONS[i]` is the SQL script taking the database from
version i to i + 1, and the version lives in `PRAGMA user_version`. A database made by any earlier Potion
is brought up to date in place; each step and its version bump commit together, so an interrupted
upgrade resumes where it stopped. A database from a newer Potion is refused, never downgraded.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from potion.errors import DatabaseTooNew


def schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, migrations: Sequence[str], *, name: str = "database") -> int:
    """Apply the migrations `db` lacks; returns its version (`len(migrations)`).

    Raises `DatabaseTooNew` for a database whose version is past the last migration (`name` says which
    database in the message), and `sqlite3.Error` when a script fails (that step is rolled back).
    """
    version = schema_version(db)
    if version > len(migrations):
        raise DatabaseTooNew(
            f"the {name} has schema version {version}, newer than this Potion's {len(migrations)}",
            hint="upgrade Potion, or move the file away to start a new one",
        )
    for number in range(version, len(migrations)):
        # executescript commits any open transaction first; the version bump is part of the same script.
        try:
            db.executescript(f"BEGIN;\n{migrations[number]}\nPRAGMA user_version = {number + 1};\nCOMMIT;")
        except sqlite3.Error:
            if db.in_transaction:
                db.rollback()  # the script stopped midway: none of this step stays
            raise
    return len(migrations)
