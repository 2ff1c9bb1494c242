"""Local telemetry of suggestions in SQLite: latency, tokens, shown, accepted, cache hit.

Nothing leaves the machine. Writes go through one background thread so a keystroke never waits on a
disk sync; `flush()` waits for them (tests, shutdown). The schema grows by numbered migrations.

A damaged database (a garbage page, a truncated or 0-byte file) is never read as if it were whole:
`summary` checks it first and raises `TelemetryError` with the fix (`potion stats --repair`, which
`repair` does: the readable rows go into a fresh file, the damaged one is kept). The language server opens
it with `recover=True`: damage found at open or by a failing write is repaired the same way, reported
once through `on_notice`, and recording goes on.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lsp.errors import TelemetryError
from potion import settings
from potion.abtest import percentile
from potion.errors import DatabaseTooNew
from potion.sqlite_migrations import migrate
from potion.sqlite_salvage import integrity_problem, is_damage, salvage

log = logging.getLogger(__name__)

MIGRATIONS: list[str] = [
    # 1: one row per suggestion the engine answered
    """
    CREATE TABLE suggestions (
        id TEXT PRIMARY KEY,
        ts REAL NOT NULL,
        uri TEXT,
        kind TEXT NOT NULL,
        latency_ms REAL NOT NULL,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        shown INTEGER NOT NULL DEFAULT 0,
        accepted INTEGER NOT NULL DEFAULT 0,
        cache_hit INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX suggestions_ts ON suggestions (ts);
    """,
    # 2: generations stopped by the time budget
    "ALTER TABLE suggestions ADD COLUMN timed_out INTEGER NOT NULL DEFAULT 0;",
    # 3: which model answered, and its arm of a canary split ("stable" or "canary")
    """
    ALTER TABLE suggestions ADD COLUMN model TEXT NOT NULL DEFAULT '';
    ALTER TABLE suggestions ADD COLUMN arm TEXT NOT NULL DEFAULT 'stable';
    """,
]


def default_path() -> Path:
    return settings.data_dir() / "telemetry.sqlite3"


def connect(path: Path, *, check: bool = False) -> sqlite3.Connection:
    """Open the database and bring its schema up to date; `check` also reads every page once.

    Raises `TelemetryError`: for a newer Potion's database, and (with the fix) for a damaged one.
    """
    db = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file() and path.stat().st_size == 0:
            raise sqlite3.DatabaseError("the file is empty (0 bytes)")  # not a fresh start: say so
        db = sqlite3.connect(path, check_same_thread=False, timeout=5)
        db.execute("PRAGMA journal_mode=WAL")
        if check and (problem := integrity_problem(db)) is not None:
            raise sqlite3.DatabaseError(f"integrity check failed: {problem}")
        migrate(db, MIGRATIONS, name=f"telemetry database {path}")
        return db
    except DatabaseTooNew as exc:
        if db is not None:
            db.close()
        raise TelemetryError(exc.message, hint=exc.hint) from exc
    except sqlite3.DatabaseError as exc:
        if db is not None:
            db.close()
        raise damaged(path, exc) from exc


def damaged(path: Path, exc: sqlite3.Error) -> TelemetryError:
    """The one-line error for a telemetry database SQLite cannot read."""
    return TelemetryError(
        f"cannot read the telemetry database {path}: {exc}",
        hint=f"`potion stats --repair` keeps its readable rows, or move it away (mv {path} {path}.bad)",
    )


def repair(path: Path | None = None) -> str:
    """`potion stats --repair`: salvage a damaged database into a fresh one; one line saying what happened.

    A healthy database is left alone. Raises `TelemetryError` when the file cannot be repaired (a newer
    Potion's, or a directory that cannot be written).
    """
    path = path or default_path()
    if not path.exists():
        return f"no telemetry database yet ({path})"
    try:
        connect(path, check=True).close()
        return f"the telemetry database is healthy, nothing to repair ({path})"
    except TelemetryError as exc:
        if not isinstance(exc.__cause__, sqlite3.DatabaseError):
            raise
        reason = exc.__cause__
    return _salvaged(path, reason)


def _salvaged(path: Path, reason: BaseException) -> str:
    try:
        report = salvage(path, MIGRATIONS, name=f"telemetry database {path}")
    except DatabaseTooNew as exc:
        raise TelemetryError(exc.message, hint=exc.hint) from exc
    except OSError as exc:
        raise TelemetryError(f"cannot repair the telemetry database {path}: {exc}") from exc
    return (
        f"the telemetry database was damaged ({reason}): {report.describe()}; "
        f"the damaged file is kept as {report.kept_as}"
    )


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


@dataclass(frozen=True)
class Record:
    id: str
    uri: str
    kind: str  # "inline" or "completion"
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    shown: bool
    cache_hit: bool
    timed_out: bool = False
    model: str = ""  # the model that answered (`ModelInfo.name`)
    arm: str = "stable"  # "stable" or "canary" (potion.backends.canary)


class Telemetry:
    """Records suggestions and acceptances from any thread; one writer thread owns the connection.

    With `recover=True` (the language server) a damaged database is salvaged at open and whenever a
    write finds damage; `on_notice` gets one line the first time (later repairs are only logged). Without
    it a damaged file raises `TelemetryError` and is left as it is.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        recover: bool = False,
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        self.path = path or default_path()
        self.recover = recover
        self.notice: str | None = None  # what a repair at open said
        self._on_notice = on_notice
        self._told = False
        self._db = self._open()
        self._queue: queue.Queue[tuple[str, tuple] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._write_loop, name="potion-telemetry", daemon=True)
        self._thread.start()

    def record(self, rec: Record) -> None:
        self._queue.put(
            (
                "INSERT OR REPLACE INTO suggestions (id, ts, uri, kind, latency_ms, prompt_tokens,"
                " completion_tokens, shown, cache_hit, timed_out, model, arm)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    rec.id,
                    time.time(),
                    rec.uri,
                    rec.kind,
                    rec.latency_ms,
                    rec.prompt_tokens,
                    rec.completion_tokens,
                    int(rec.shown),
                    int(rec.cache_hit),
                    int(rec.timed_out),
                    rec.model,
                    rec.arm,
                ),
            )
        )

    def accepted(self, suggestion_id: str) -> None:
        self._queue.put(("UPDATE suggestions SET accepted = 1 WHERE id = ?", (suggestion_id,)))

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every queued write is committed."""
        done = threading.Event()
        self._queue.put(("__flush__", (done,)))
        done.wait(timeout)

    def _open(self) -> sqlite3.Connection:
        try:
            db = connect(self.path, check=self.recover)
        except TelemetryError as exc:
            if not self.recover or not isinstance(exc.__cause__, sqlite3.DatabaseError):
                raise
            self.notice = _salvaged(self.path, exc.__cause__)
            self._tell(self.notice)
            db = connect(self.path)
        self._inode = _inode(self.path)
        return db

    def _tell(self, text: str) -> None:
        log.warning("%s", text)
        if not self._told and self._on_notice is not None:
            self._told = True
            self._on_notice(text)

    def _write_loop(self) -> None:
        while (item := self._queue.get()) is not None:
            sql, args = item
            if sql == "__flush__":
                args[0].set()
                continue
            if self.recover and _inode(self.path) != self._inode:
                self._reopen()  # `potion stats --repair` or another server replaced the file
            for attempt in (1, 2):
                try:
                    with self._db:
                        self._db.execute(sql, args)
                    break
                except sqlite3.Error as exc:  # a full disk loses a telemetry row, never a suggestion
                    if attempt == 1 and self.recover and is_damage(exc):
                        self._recover(exc)  # then write the row again, into the repaired file
                        continue
                    log.warning("telemetry write failed: %s", exc)
                    break
        self._db.close()

    def _reopen(self) -> None:
        self._db.close()
        try:
            self._db = self._open()
        except TelemetryError as exc:
            self._tell(f"telemetry is off: {exc.user_message()}")
            self._db = sqlite3.connect(":memory:", check_same_thread=False)  # rows go nowhere from now
            self.recover = False

    def _recover(self, exc: sqlite3.Error) -> None:
        """A write found damage: salvage the file (unless another process just did) and reconnect."""
        self._db.close()
        try:
            self._db = connect(self.path, check=True)  # repaired meanwhile by someone else?
            self._inode = _inode(self.path)
            return
        except TelemetryError:
            pass
        try:
            self._tell(_salvaged(self.path, exc))
        except TelemetryError as failed:
            self._tell(f"telemetry is off: {failed.user_message()}")
            self._db = sqlite3.connect(":memory:", check_same_thread=False)
            self.recover = False
            return
        self._reopen()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)


def summary(path: Path | None = None, *, since: float | None = None) -> dict[str, float | int]:
    """Latency percentiles and acceptance / cache-hit rates of the recorded suggestions."""
    path = path or default_path()
    if not path.exists():
        return {"suggestions": 0, "shown": 0, "accepted": 0}
    # Checked first: a damaged index page leaves the rows readable but fails every new write, so old
    # numbers would look current.
    db = connect(path, check=True)
    try:
        where, args = ("WHERE ts >= ?", (since,)) if since is not None else ("", ())
        rows = db.execute(
            f"SELECT latency_ms, shown, accepted, cache_hit, completion_tokens FROM suggestions {where}", args
        ).fetchall()
    except sqlite3.DatabaseError as exc:  # a damaged page past the schema: "disk image is malformed"
        raise damaged(path, exc) from exc
    finally:
        db.close()
    latencies = sorted(r[0] for r in rows)
    shown = sum(r[1] for r in rows)
    accepted = sum(r[2] for r in rows)
    hits = sum(r[3] for r in rows)
    return {
        "suggestions": len(rows),
        "shown": shown,
        "accepted": accepted,
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "acceptance_rate": round(accepted / shown, 3) if shown else 0.0,
        "cache_hit_rate": round(hits / len(rows), 3) if rows else 0.0,
        "completion_tokens": sum(r[4] for r in rows),
    }
