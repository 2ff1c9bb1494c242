"""Chat history in SQLite: sessions and their messages, with numbered migrations.

The database lives at `potion.settings.data_dir() / "chat.sqlite3"` in WAL mode. Its schema version is
`PRAGMA user_version`; `MIGRATIONS[i]` takes a database from version i to i + 1, so a database made by any
earlier Potion is brought up to date in place. A corrupt database is moved aside (never deleted) and a
fresh one started; a database locked by another program is left alone and this run writes to a side file.
Either way `HistoryStore.notice` says what happened so the app can tell the user.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from potion import settings
from potion.sqlite_migrations import migrate, schema_version
from tui.errors import HistoryError

DB_NAME = "chat.sqlite3"

MIGRATIONS: list[str] = [
    # 1: the first schema.
    """
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        created REAL NOT NULL
    );
    """,
    # 2: interrupted/failed answers, attachments' metadata, per-session system prompt and model.
    """
    ALTER TABLE messages ADD COLUMN status TEXT NOT NULL DEFAULT 'complete';
    ALTER TABLE messages ADD COLUMN meta TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE sessions ADD COLUMN system_prompt TEXT;
    ALTER TABLE sessions ADD COLUMN model TEXT;
    """,
    # 3: reopening a long history reads messages by session in order.
    """
    CREATE INDEX IF NOT EXISTS messages_by_session ON messages(session_id, id);
    CREATE INDEX IF NOT EXISTS sessions_by_update ON sessions(updated);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)

ROLES = ("user", "assistant", "context")
STATUSES = ("complete", "interrupted", "error")


@dataclass
class Session:
    id: int
    title: str
    created: float
    updated: float
    system_prompt: str | None = None
    model: str | None = None


@dataclass
class StoredMessage:
    id: int
    session_id: int
    role: str  # "user" | "assistant" | "context" (an attached file)
    content: str
    status: str = "complete"  # "complete" | "interrupted" | "error"
    created: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)


def default_path() -> Path:
    return settings.data_dir() / DB_NAME


def _is_locked(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class HistoryStore:
    """Sessions and messages. Use `HistoryStore.open()`, which recovers from a corrupt or locked file."""

    def __init__(self, path: Path | str, *, timeout: float = 2.0) -> None:
        self.path = Path(path)
        self.notice: str | None = None
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), timeout=timeout, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute("PRAGMA foreign_keys = ON")
            if str(self.path) != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._check()
            self._migrate()
        except sqlite3.Error:
            self._conn.close()
            raise

    # -- opening ------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | str | None = None, *, timeout: float = 2.0) -> HistoryStore:
        """Open the history, moving a corrupt database aside and side-stepping a locked one."""
        path = Path(path) if path is not None else default_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return cls(path, timeout=timeout)
        except sqlite3.OperationalError as exc:
            if "unable to open" in str(exc):
                raise HistoryError(
                    f"cannot open chat history {path}: {exc}", hint="check its permissions"
                ) from exc
            if not _is_locked(exc):
                return cls._recover_corrupt(path, exc, timeout)
            side = path.with_name(f"{path.stem}.side-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.sqlite3")
            store = cls(side, timeout=timeout)
            store.notice = (
                f"History database {path} is locked by another program; "
                f"this session is saved to {side.name} instead"
            )
            return store
        except (sqlite3.DatabaseError, HistoryError) as exc:
            return cls._recover_corrupt(path, exc, timeout)

    @classmethod
    def _recover_corrupt(cls, path: Path, exc: Exception, timeout: float) -> HistoryStore:
        backup = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        path.rename(backup)
        for suffix in ("-wal", "-shm"):
            extra = path.with_name(path.name + suffix)
            if extra.exists():
                extra.rename(backup.with_name(backup.name + suffix))
        store = cls(path, timeout=timeout)
        store.notice = (
            f"History database was unreadable ({exc}); moved it to {backup.name} and started a fresh one"
        )
        return store

    def _check(self) -> None:
        # Reading the schema is what fails on a file that is not a database.
        row = self._conn.execute("PRAGMA quick_check").fetchone()
        if row is None or row[0] != "ok":
            raise HistoryError(f"integrity check failed: {row[0] if row else 'no answer'}")
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise HistoryError(f"schema version {version} is newer than this Potion's {SCHEMA_VERSION}")
        # Take the write lock now, so a database another program holds is found at open, not mid-chat.
        self._conn.execute("BEGIN IMMEDIATE")
        self._conn.execute("COMMIT")

    def _migrate(self) -> None:
        migrate(self._conn, MIGRATIONS, name=f"chat history {self.path}")

    @property
    def schema_version(self) -> int:
        return schema_version(self._conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- writing ------------------------------------------------------------------------------------

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            try:
                with self._conn:
                    return self._conn.execute(sql, params)
            except sqlite3.Error as exc:
                raise HistoryError(f"could not save chat history: {exc}", hint=str(self.path)) from exc

    def new_session(self, title: str = "New chat", *, system_prompt: str | None = None) -> Session:
        now = time.time()
        cur = self._write(
            "INSERT INTO sessions (title, created, updated, system_prompt) VALUES (?, ?, ?, ?)",
            (title, now, now, system_prompt),
        )
        return Session(int(cur.lastrowid or 0), title, now, now, system_prompt)

    def rename_session(self, session_id: int, title: str) -> None:
        title = " ".join(title.split())
        if not title:
            raise HistoryError("a chat needs a non-empty title")
        self._write("UPDATE sessions SET title = ? WHERE id = ?", (title, session_id))

    def set_system_prompt(self, session_id: int, prompt: str | None) -> None:
        self._write("UPDATE sessions SET system_prompt = ? WHERE id = ?", (prompt, session_id))

    def set_model(self, session_id: int, model: str | None) -> None:
        self._write("UPDATE sessions SET model = ? WHERE id = ?", (model, session_id))

    def delete_session(self, session_id: int) -> None:
        self._write("DELETE FROM sessions WHERE id = ?", (session_id,))

    def clear_session(self, session_id: int) -> None:
        self._write("DELETE FROM messages WHERE session_id = ?", (session_id,))

    def add_message(
        self,
        session_id: int,
        role: str,
        content: str,
        *,
        status: str = "complete",
        meta: dict[str, Any] | None = None,
    ) -> StoredMessage:
        if role not in ROLES or status not in STATUSES:
            raise ValueError(f"bad message role/status: {role}/{status}")
        now = time.time()
        meta = meta or {}
        cur = self._write(
            "INSERT INTO messages (session_id, role, content, created, status, meta)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (session_id, role, content, now, status, json.dumps(meta)),
        )
        self._write("UPDATE sessions SET updated = ? WHERE id = ?", (now, session_id))
        return StoredMessage(int(cur.lastrowid or 0), session_id, role, content, status, now, meta)

    # -- reading ------------------------------------------------------------------------------------

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise HistoryError(f"could not read chat history: {exc}", hint=str(self.path)) from exc

    @staticmethod
    def _session(row: sqlite3.Row) -> Session:
        return Session(
            row["id"], row["title"], row["created"], row["updated"], row["system_prompt"], row["model"]
        )

    def sessions(self) -> list[Session]:
        """All sessions, most recently used first."""
        return [self._session(r) for r in self._read("SELECT * FROM sessions ORDER BY updated DESC, id DESC")]

    def session(self, session_id: int) -> Session | None:
        rows = self._read("SELECT * FROM sessions WHERE id = ?", (session_id,))
        return self._session(rows[0]) if rows else None

    def search(self, query: str) -> list[Session]:
        """Sessions whose title or any message contains `query` (case-insensitive), newest first."""
        query = query.strip()
        if not query:
            return self.sessions()
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._read(
            """
            SELECT * FROM sessions s
            WHERE s.title LIKE ?1 ESCAPE '\\'
               OR EXISTS (SELECT 1 FROM messages m
                          WHERE m.session_id = s.id AND m.content LIKE ?1 ESCAPE '\\')
            ORDER BY s.updated DESC, s.id DESC
            """,
            (pattern,),
        )
        return [self._session(r) for r in rows]

    def messages(self, session_id: int) -> list[StoredMessage]:
        rows = self._read("SELECT * FROM messages WHERE session_id = ? ORDER BY id", (session_id,))
        return [
            StoredMessage(
                r["id"],
                r["session_id"],
                r["role"],
                r["content"],
                r["status"],
                r["created"],
                json.loads(r["meta"]),
            )
            for r in rows
        ]
