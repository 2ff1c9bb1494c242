"""Local telemetry of suggestions in SQLite: latency, tokens, shown, accepted, cache hit.

Nothing leaves the machine. Writes go through one background thread so a keystroke never waits on a
disk sync; `flush()` waits for them (tests, shutdown). The schema grows by numbered migrations.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from lsp.errors import TelemetryError
from potion import settings
from potion.abtest import percentile
from potion.errors import DatabaseTooNew
from potion.sqlite_migrations import migrate

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


def connect(path: Path) -> sqlite3.Connection:
    """Open the database and bring its schema up to date."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, timeout=5)
        db.execute("PRAGMA journal_mode=WAL")
        migrate(db, MIGRATIONS, name=f"telemetry database {path}")
        return db
    except DatabaseTooNew as exc:
        raise TelemetryError(exc.message, hint=exc.hint) from exc
    except sqlite3.DatabaseError as exc:
        raise damaged(path, exc) from exc


def damaged(path: Path, exc: sqlite3.Error) -> TelemetryError:
    """The one-line error for a telemetry database SQLite cannot read."""
    return TelemetryError(
        f"cannot read the telemetry database {path}: {exc}",
        hint=f"move it away (mv {path} {path}.bad); Potion creates a new one",
    )


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
    """Records suggestions and acceptances from any thread; one writer thread owns the connection."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()
        self._db = connect(self.path)
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

    def _write_loop(self) -> None:
        while (item := self._queue.get()) is not None:
            sql, args = item
            if sql == "__flush__":
                args[0].set()
                continue
            try:
                with self._db:
                    self._db.execute(sql, args)
            except sqlite3.Error as exc:  # a full disk loses a telemetry row, never a suggestion
                log.warning("telemetry write failed: %s", exc)
        self._db.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)


def summary(path: Path | None = None, *, since: float | None = None) -> dict[str, float | int]:
    """Latency percentiles and acceptance / cache-hit rates of the recorded suggestions."""
    path = path or default_path()
    if not path.exists():
        return {"suggestions": 0, "shown": 0, "accepted": 0}
    db = connect(path)
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
