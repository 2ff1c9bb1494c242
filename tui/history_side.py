"""Side files of the chat history: where a chat writes while another program locks the history, and how
they are merged back.

A side file is a whole history database named `chat.side-YYYYmmdd-HHMMSS-PID-TOKEN.sqlite3` beside the
main one. Its sessions either are new or continue a session of the main history (`continues_id`, checked
against that session's creation time). A side file whose process has ended is merged into the main
history in one transaction that also records its name (`merged_side_files`), then removed: a crash
between the two never merges it twice.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sqlite3
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from potion.errors import DatabaseTooNew
from potion.sqlite_migrations import migrate

log = logging.getLogger(__name__)

HOST = socket.gethostname()
# A session claimed from another machine sharing the file counts as held for this long after its last
# message (there is no way to ask that machine whether the chat still runs).
OTHER_HOST_CLAIM_S = 12 * 3600
INSERT_MESSAGE = (
    "INSERT INTO messages (session_id, role, content, created, status, meta) VALUES (?, ?, ?, ?, ?, ?)"
)
INSERT_SESSION = "INSERT INTO sessions (title, created, updated, system_prompt, model) VALUES (?, ?, ?, ?, ?)"
_SIDE_NAME = re.compile(r"\.side-\d{8}-\d{6}-(\d+)-[0-9a-f]+\.")


def side_path(path: Path) -> Path:
    """A new side file's name for the history at `path`."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return path.with_name(f"{path.stem}.side-{stamp}-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, alive
    except OSError:
        return False
    return True


def side_files(path: Path) -> list[Path]:
    """The side files of the history at `path`, oldest first."""
    return sorted(
        p for p in path.parent.glob(f"{path.stem}.side-*{path.suffix}") if _SIDE_NAME.search(p.name)
    )


def in_use(side: Path, open_here: set[Path]) -> bool:
    """Whether a chat may still be writing `side` (this process, or the live process named in it)."""
    if side in open_here:
        return True
    match = _SIDE_NAME.search(side.name)
    pid = int(match.group(1)) if match else 0
    return pid != os.getpid() and pid_alive(pid)


def merge_all(
    db: sqlite3.Connection, path: Path, migrations: Sequence[str], open_here: set[Path]
) -> str | None:
    """Merge every finished side file of `path` into `db`; one line for the user, or None."""
    sessions = messages = files = 0
    problems = []
    for side in side_files(path):
        if in_use(side, open_here):
            continue
        try:
            n_sessions, n_messages = merge_one(db, side, migrations)
        except (sqlite3.Error, DatabaseTooNew, OSError) as exc:
            log.warning("could not merge chat history side file %s: %s", side, exc)
            problems.append(f"{side.name} ({exc})")
            continue
        if n_sessions:
            sessions, messages, files = sessions + n_sessions, messages + n_messages, files + 1
    parts = []
    if sessions:
        parts.append(
            f"Merged {sessions} chat{'s' if sessions != 1 else ''} ({messages} messages) written to "
            f"{files} side file{'s' if files != 1 else ''} while the history was locked"
        )
    if problems:
        parts.append("could not merge " + ", ".join(problems) + "; it is kept")
    return "; ".join(parts) or None


def merge_one(db: sqlite3.Connection, side: Path, migrations: Sequence[str]) -> tuple[int, int]:
    """Copy `side`'s sessions and messages into `db` and remove `side`; (sessions, messages) merged."""
    done = db.execute("SELECT 1 FROM merged_side_files WHERE name = ?", (side.name,)).fetchone()
    merged = (0, 0)
    if done is None:
        src = sqlite3.connect(side, timeout=0.2)
        try:
            migrate(src, migrations, name=f"chat history side file {side}")  # one from an older Potion
            sessions = src.execute(
                "SELECT id, title, created, updated, system_prompt, model, continues_id, continues_created"
                " FROM sessions ORDER BY id"
            ).fetchall()
            rows = src.execute(
                "SELECT session_id, role, content, created, status, meta FROM messages ORDER BY id"
            ).fetchall()
        finally:
            src.close()
        merged = _insert(db, side.name, sessions, rows)
    for suffix in ("", "-wal", "-shm"):
        side.with_name(side.name + suffix).unlink(missing_ok=True)  # its rows are in the history now
    return merged


def _insert(db: sqlite3.Connection, name: str, sessions: list[tuple], rows: list[tuple]) -> tuple[int, int]:
    targets: dict[int, int] = {}
    with db:
        for sid, title, created, updated, system_prompt, model, continues_id, continues_created in sessions:
            target = None
            if continues_id is not None:
                row = db.execute("SELECT created FROM sessions WHERE id = ?", (continues_id,)).fetchone()
                if row is not None and (continues_created is None or abs(row[0] - continues_created) < 1e-3):
                    target = continues_id  # the same session, not one that reused its id
            if target is None:
                cur = db.execute(INSERT_SESSION, (title, created, updated, system_prompt, model))
                target = int(cur.lastrowid or 0)
            else:
                db.execute("UPDATE sessions SET updated = max(updated, ?) WHERE id = ?", (updated, target))
            targets[sid] = target
        kept = [(targets[r[0]], *r[1:]) for r in rows if r[0] in targets]
        db.executemany(INSERT_MESSAGE, kept)
        db.execute(
            "INSERT INTO merged_side_files VALUES (?, ?, ?, ?)", (name, time.time(), len(sessions), len(kept))
        )
    return len({t for t in targets.values()}), len(kept)


def merge_back(side: Path, main: Path, migrations: Sequence[str]) -> bool:
    """A side store closing: merge it into `main` now if the lock is gone (else a later run will)."""
    try:
        db = sqlite3.connect(main, timeout=0.2)
    except sqlite3.Error:
        return False
    try:
        migrate(db, migrations, name=f"chat history {main}")
        merge_one(db, side, migrations)
        return True
    except (sqlite3.Error, DatabaseTooNew, OSError) as exc:
        log.info("chat history side file %s stays until the next start: %s", side, exc)
        return False
    finally:
        db.close()
