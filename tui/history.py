"""Chat history in SQLite: sessions and their messages, with numbered migrations.

The database lives at `potion.settings.data_dir() / "chat.sqlite3"` in WAL mode. Its schema version is
`PRAGMA user_version`; `MIGRATIONS[i]` takes a database from version i to i + 1, so a database made by any
earlier Potion is brought up to date in place. What this store guarantees:

- Damage costs only what it must. A damaged file (corrupt page, truncated, 0 bytes, not a database) is
  moved aside, never deleted, and its readable rows are copied into a fresh one
  (`potion.sqlite_salvage`); `notice` tells the user once, with how many rows were saved and lost.
- Two chats on one history keep their own sessions. A chat claims the sessions it writes
  (`session_owners`); a session another live chat holds is not written here (`claim` says so, and the
  chat screen starts a new chat instead), so their messages never interleave.
- No write is dropped on a lock. A database another program holds at open: this run writes to a side
  file (`tui.history_side`), merged back into the history by a later run. A write that meets a lock
  later is queued, in order, retried in the background, and shown by reads meanwhile; `close()` waits
  for the queue and moves what is still locked out to a side file.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from potion import settings
from potion.errors import DatabaseTooNew
from potion.sqlite_migrations import migrate, schema_version
from potion.sqlite_salvage import integrity_problem, move_aside, salvage
from tui import history_side
from tui.errors import HistoryError
from tui.history_writes import OPEN_STORES, Write, apply_write, owner_alive, replay

log = logging.getLogger(__name__)

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
    # 4: which chat writes a session (two chats on one history keep apart); side files: the session of the
    # main history a side session continues, and the side files already merged back.
    """
    CREATE TABLE session_owners (
        session_id INTEGER PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        token TEXT NOT NULL,
        seen REAL NOT NULL
    );
    ALTER TABLE sessions ADD COLUMN continues_id INTEGER;
    ALTER TABLE sessions ADD COLUMN continues_created REAL;
    CREATE TABLE merged_side_files (
        name TEXT PRIMARY KEY,
        merged REAL NOT NULL,
        sessions INTEGER NOT NULL,
        messages INTEGER NOT NULL
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)

ROLES = ("user", "assistant", "context")
STATUSES = ("complete", "interrupted", "error")


@dataclass
class Session:
    id: int  # negative while its insert waits for a lock; the real id once written
    title: str
    created: float
    updated: float
    system_prompt: str | None = None
    model: str | None = None


@dataclass
class StoredMessage:
    id: int  # 0 while its insert waits for a lock; the real id once written
    session_id: int
    role: str  # "user" | "assistant" | "context" (an attached file)
    content: str
    status: str = "complete"  # "complete" | "interrupted" | "error"
    created: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)


def session_title(first_text: str) -> str:
    """A new chat's title: its first message on one line, cut to 48 characters."""
    return " ".join(first_text.split())[:48] or "New chat"


def default_path() -> Path:
    return settings.data_dir() / DB_NAME


def _is_locked(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class HistoryStore:
    """Sessions and messages. Use `HistoryStore.open()`, which recovers from a damaged or locked file."""

    def __init__(self, path: Path | str, *, timeout: float = 2.0, retry_interval: float = 0.05) -> None:
        self.path = Path(path)
        self.notice: str | None = None
        self.side_of: Path | None = None  # the locked history this side file stands in for
        self.token = uuid.uuid4().hex  # this store as the owner of the sessions it writes
        self.timeout = timeout
        self._retry_interval = retry_interval
        self._lock = threading.RLock()
        self._queue_changed = threading.Condition(self._lock)
        self._pending: list[Write] = []  # writes waiting for a lock, oldest first
        self._real_ids: dict[int, int] = {}  # provisional (negative) session id -> id once written
        self._next_provisional = -1
        self._owned: set[int] = set()
        self._known: dict[int, Session] = {}  # sessions read or written: replayed into a side file
        self._retrier: threading.Thread | None = None
        self._closed = False
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
        OPEN_STORES[self.token] = self

    # -- opening ------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | str | None = None, *, timeout: float = 2.0) -> HistoryStore:
        """Open the history: salvage a damaged database, side-step a locked one, merge side files back."""
        path = Path(path) if path is not None else default_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file() and path.stat().st_size == 0:
            # sqlite would take an empty file for a new database: say so instead of starting over silently.
            return cls._recover_damaged(path, sqlite3.DatabaseError("the file is empty"), timeout)
        try:
            store = cls(path, timeout=timeout)
        except sqlite3.OperationalError as exc:
            if "unable to open" in str(exc):
                raise HistoryError(
                    f"cannot open chat history {path}: {exc}", hint="check its permissions"
                ) from exc
            if not _is_locked(exc):
                return cls._recover_damaged(path, exc, timeout)
            side = history_side.side_path(path)
            store = cls(side, timeout=timeout)
            store.side_of = path
            store.notice = (
                f"History database {path} is locked by another program; "
                f"this session is saved to {side.name} instead and merged back later"
            )
            return store
        except (sqlite3.DatabaseError, HistoryError) as exc:
            return cls._recover_damaged(path, exc, timeout)
        store.notice = store.merge_side_files()
        return store

    @classmethod
    def _recover_damaged(cls, path: Path, exc: Exception, timeout: float) -> HistoryStore:
        try:
            report = None if "newer" in str(exc) else salvage(path, MIGRATIONS, name=f"chat history {path}")
        except DatabaseTooNew:
            report = None
        except OSError as failed:
            raise HistoryError(
                f"chat history {path} is damaged ({exc}) and could not be repaired: {failed}",
                hint=f"check that {path.parent} is writable",
            ) from failed
        if report is None:  # a newer Potion's history: keep it whole for that Potion
            kept = move_aside(path)
            store = cls(path, timeout=timeout)
            store.notice = (
                f"History database was unreadable ({exc}); moved it to {kept.name} and started a fresh one"
            )
            return store
        store = cls(path, timeout=timeout)
        store._repair_salvaged()
        if report.source_bytes == 0:
            store.notice = (
                f"Chat history {path} was empty (0 bytes), nothing to recover; "
                f"moved it to {report.kept_as.name} and started a fresh one"
            )
        else:
            store.notice = (
                f"Chat history was damaged ({exc}): {report.describe()}; "
                f"moved it to {report.kept_as.name} and started a fresh one with what was saved"
            )
        merged = store.merge_side_files()
        if merged:
            store.notice += f". {merged}"
        return store

    def _repair_salvaged(self) -> None:
        """After a salvage: messages whose session row was lost get a session again; no stale owners."""
        with self._conn:
            self._conn.execute("DELETE FROM session_owners")
            self._conn.execute(
                """
                INSERT INTO sessions (id, title, created, updated)
                SELECT session_id, 'Recovered chat', min(created), max(created) FROM messages
                WHERE session_id NOT IN (SELECT id FROM sessions) GROUP BY session_id
                """
            )

    def _check(self) -> None:
        # Reading the schema is what fails on a file that is not a database; quick_check finds bad pages.
        if (problem := integrity_problem(self._conn)) is not None:
            raise HistoryError(f"integrity check failed: {problem}")
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise HistoryError(f"schema version {version} is newer than this Potion's {SCHEMA_VERSION}")
        # Take the write lock now, so a database another program holds is found at open, not mid-chat.
        self._conn.execute("BEGIN IMMEDIATE")
        self._conn.execute("COMMIT")

    def _migrate(self) -> None:
        migrate(self._conn, MIGRATIONS, name=f"chat history {self.path}")

    def merge_side_files(self) -> str | None:
        """Merge side files of earlier, finished runs into this history; one line saying so, or None."""
        if self.side_of is not None or str(self.path) == ":memory:":
            return None
        with self._lock:
            open_here = {store.path for store in list(OPEN_STORES.values())}
            return history_side.merge_all(self._conn, self.path, MIGRATIONS, open_here)

    @property
    def schema_version(self) -> int:
        return schema_version(self._conn)

    @property
    def pending(self) -> int:
        """Writes waiting for another program to release the database."""
        with self._lock:
            return len(self._pending)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until queued writes are saved (True) or `timeout` passes (False)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._queue_changed:
            while self._pending:
                self._try_pending()
                left = deadline - time.monotonic()
                if not self._pending or left <= 0:
                    break
                self._queue_changed.wait(min(left, self._retry_interval))
            return not self._pending

    def close(self) -> Path | None:
        """Save what is queued (or move it to a side file), release this chat's sessions, close.

        Returns the side file that got writes the lock kept out, if any.
        """
        if self._closed:
            return None
        spilled = None
        if not self.flush():
            spilled = self._spill(self._take_pending())
        with self._lock:
            self._closed = True
            self._queue_changed.notify_all()
            try:
                self._conn.execute("PRAGMA busy_timeout = 200")  # not another full wait on a held lock
                with self._conn:
                    self._conn.execute("DELETE FROM session_owners WHERE token = ?", (self.token,))
            except sqlite3.Error:
                pass  # a stale owner row is harmless: its process is gone once this one exits
            self._conn.close()
        OPEN_STORES.pop(self.token, None)
        if self.side_of is not None:
            history_side.merge_back(self.path, self.side_of, MIGRATIONS)
        if spilled is not None:
            log.warning("chat history %s was locked: the last writes went to %s", self.path, spilled)
        return spilled

    # -- writing ------------------------------------------------------------------------------------

    def _submit(self, write: Write) -> None:
        """Write now, or queue behind earlier writes / a lock held by another program."""
        with self._lock:
            if self._closed:
                raise HistoryError("could not save chat history: it is closed", hint=str(self.path))
            if not self._pending:
                try:
                    self._apply_now(write)
                    return
                except sqlite3.OperationalError as exc:
                    if not _is_locked(exc):
                        raise HistoryError(
                            f"could not save chat history: {exc}", hint=str(self.path)
                        ) from exc
                except sqlite3.Error as exc:
                    raise HistoryError(f"could not save chat history: {exc}", hint=str(self.path)) from exc
            self._pending.append(write)
            if self._retrier is None:
                self._retrier = threading.Thread(target=self._retry_loop, name="potion-history", daemon=True)
                self._retrier.start()

    def _apply_now(self, write: Write) -> None:
        with self._conn:
            apply_write(self._conn, write, self._resolve, self.token, self._real_ids)
        if write.kind in ("session", "claim"):
            self._owned.add(write.session.id if write.session else self._resolve(write.session_id))
        if write.session is not None:
            self._known[write.session.id] = write.session

    def _resolve(self, session_id: int) -> int:
        return self._real_ids.get(session_id, session_id)

    def _try_pending(self) -> None:
        """Write queued writes in order until one meets the lock again (called holding the lock)."""
        if self._closed:
            return
        # Wait briefly per try: the UI thread may be waiting on this lock.
        self._conn.execute(f"PRAGMA busy_timeout = {int(self._retry_interval * 1000)}")
        try:
            while self._pending:
                try:
                    self._apply_now(self._pending[0])
                except sqlite3.OperationalError as exc:
                    if _is_locked(exc):
                        return
                    log.warning("chat history: a queued write failed and is dropped: %s", exc)
                except sqlite3.Error as exc:  # e.g. its session was deleted by another chat meanwhile
                    log.warning("chat history: a queued write failed and is dropped: %s", exc)
                self._pending.pop(0)
                self._queue_changed.notify_all()
        finally:
            self._conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")

    def _retry_loop(self) -> None:
        delay = self._retry_interval
        with self._queue_changed:
            while self._pending and not self._closed:
                self._queue_changed.wait(delay)
                self._try_pending()
                delay = min(delay * 2, 1.0)
            self._retrier = None

    def _spill(self, pending: list[Write]) -> Path | None:
        """Replay writes the lock kept out into a new side file, merged back by a later run."""
        main = self.side_of or self.path
        side = HistoryStore(history_side.side_path(main), timeout=self.timeout)
        side.side_of = main
        with side._conn:
            replay(side._conn, pending, self._resolve, self._known, side.token)
        side.close()
        return side.path if side.path.exists() else main  # merged back at once if the lock went meanwhile

    def _take_pending(self) -> list[Write]:
        with self._lock:
            pending, self._pending = self._pending, []
            return pending

    def new_session(self, title: str = "New chat", *, system_prompt: str | None = None) -> Session:
        now = time.time()
        with self._lock:
            session = Session(self._next_provisional, title, now, now, system_prompt)
            self._next_provisional -= 1
            self._submit(Write("session", session=session))
            return session

    def claim(self, session_id: int) -> bool:
        """Make this chat the writer of `session_id`: False when another live chat writes it.

        While another program locks the database the claim is queued and assumed to succeed.
        """
        with self._lock:
            session_id = self._resolve(session_id)
            if session_id < 0 or session_id in self._owned:
                return True
            if self._pending:
                self._pending.append(Write("claim", session_id=session_id))
                return True
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    row = self._conn.execute(
                        "SELECT host, pid, token, seen FROM session_owners WHERE session_id = ?",
                        (session_id,),
                    ).fetchone()
                    if row is not None and row["token"] != self.token and owner_alive(*row):
                        self._conn.rollback()
                        return False
                    self._conn.execute(
                        "INSERT OR REPLACE INTO session_owners VALUES (?, ?, ?, ?, ?)",
                        (session_id, history_side.HOST, os.getpid(), self.token, time.time()),
                    )
                    self._conn.commit()
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.rollback()
                    raise
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc):
                    raise HistoryError(f"could not save chat history: {exc}", hint=str(self.path)) from exc
                self._submit(Write("claim", session_id=session_id))
            self._owned.add(session_id)
            return True

    def release(self, session_id: int) -> None:
        """Another chat may write `session_id` now (switching chats); best effort."""
        with self._lock:
            session_id = self._resolve(session_id)
            if session_id not in self._owned:
                return
            self._owned.discard(session_id)
            if self._pending or self._closed:
                return  # the owner row goes when this process does
            try:
                with self._conn:
                    self._conn.execute(
                        "DELETE FROM session_owners WHERE session_id = ? AND token = ?",
                        (session_id, self.token),
                    )
            except sqlite3.Error:
                pass  # a stale owner row is harmless: liveness is checked on claim

    def resumable(self) -> Session | None:
        """The most recently used session that no other live chat is writing (where a chat starts)."""
        rows = self._read(
            """
            SELECT s.*, o.host AS o_host, o.pid AS o_pid, o.token AS o_token, o.seen AS o_seen
            FROM sessions s LEFT JOIN session_owners o ON o.session_id = s.id
            ORDER BY s.updated DESC, s.id DESC
            """
        )
        for row in rows:
            if row["o_token"] is None or row["o_token"] == self.token:
                return self._session(row)
            if not owner_alive(row["o_host"], row["o_pid"], row["o_token"], row["o_seen"]):
                return self._session(row)
        return None

    def _update(self, sql: str, params: tuple[Any, ...], session_id: int) -> None:
        self._submit(Write("update", sql=sql, params=params, session_id=session_id))

    def rename_session(self, session_id: int, title: str) -> None:
        title = " ".join(title.split())
        if not title:
            raise HistoryError("a chat needs a non-empty title")
        self._update("UPDATE sessions SET title = ? WHERE id = ?", (title,), session_id)

    def set_system_prompt(self, session_id: int, prompt: str | None) -> None:
        self._update("UPDATE sessions SET system_prompt = ? WHERE id = ?", (prompt,), session_id)

    def set_model(self, session_id: int, model: str | None) -> None:
        self._update("UPDATE sessions SET model = ? WHERE id = ?", (model,), session_id)

    def delete_session(self, session_id: int) -> None:
        self._update("DELETE FROM sessions WHERE id = ?", (), session_id)
        self._owned.discard(self._resolve(session_id))

    def clear_session(self, session_id: int) -> None:
        self._update("DELETE FROM messages WHERE session_id = ?", (), session_id)

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
        message = StoredMessage(0, self._resolve(session_id), role, content, status, time.time(), meta or {})
        self._submit(Write("message", message=message))
        return message

    # -- reading ------------------------------------------------------------------------------------

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise HistoryError(f"could not read chat history: {exc}", hint=str(self.path)) from exc

    def _session(self, row: sqlite3.Row) -> Session:
        session = Session(
            row["id"], row["title"], row["created"], row["updated"], row["system_prompt"], row["model"]
        )
        self._known[session.id] = session
        return session

    def _queued_sessions(self) -> list[Session]:
        return [w.session for w in self._pending if w.kind == "session" and w.session is not None]

    def sessions(self) -> list[Session]:
        """All sessions, most recently used first (with those waiting for a lock)."""
        with self._lock:
            rows = self._read("SELECT * FROM sessions ORDER BY updated DESC, id DESC")
            return self._queued_sessions()[::-1] + [self._session(r) for r in rows]

    def session(self, session_id: int) -> Session | None:
        with self._lock:
            session_id = self._resolve(session_id)
            for queued in self._queued_sessions():
                if queued.id == session_id:
                    return queued
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
        """The session's messages in order, those waiting for a lock last."""
        with self._lock:
            session_id = self._resolve(session_id)
            rows = self._read("SELECT * FROM messages WHERE session_id = ? ORDER BY id", (session_id,))
            saved = [
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
            queued = [
                w.message
                for w in self._pending
                if w.message is not None and self._resolve(w.message.session_id) == session_id
            ]
            return saved + queued
