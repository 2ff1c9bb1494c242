"""Writes of the chat history kept as data, and who owns a session.

A `Write` is applied at once when it can; when another program holds the lock it waits in the store's
queue (`tui.history.HistoryStore`), and what is still locked out at close is replayed into a side file
(`replay`). A session belongs to the chat that wrote it last (`session_owners`): `owner_alive` says
whether that chat may still be writing it, so another chat starts its own session instead.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tui import history_side

if TYPE_CHECKING:
    from tui.history import HistoryStore, Session, StoredMessage

# The stores open in this process, by owner token: a session one of them claims is certainly held.
OPEN_STORES: weakref.WeakValueDictionary[str, HistoryStore] = weakref.WeakValueDictionary()

_CLAIM = "INSERT OR REPLACE INTO session_owners VALUES (?, ?, ?, ?, ?)"


@dataclass
class Write:
    """One write kept as data, so it can wait for a lock and be replayed into a side file."""

    kind: str  # "session" | "message" | "update" | "claim"
    session: Session | None = None  # "session": gets its real id when written
    message: StoredMessage | None = None  # "message": likewise
    sql: str = ""  # "update": the session id is its last parameter
    params: tuple[Any, ...] = ()
    session_id: int = 0  # "update", "claim"


def apply_write(
    db: sqlite3.Connection,
    write: Write,
    resolve: Callable[[int], int],
    token: str,
    real_ids: dict[int, int],
) -> None:
    """Run one write on `db` (inside the caller's transaction); fills in the ids it creates.

    `resolve` maps a session id as the caller knows it to the one in `db`; a new session's provisional
    (negative) id is recorded in `real_ids`.
    """
    now = time.time()
    if write.kind == "session":
        session = write.session
        assert session is not None
        cur = db.execute(
            history_side.INSERT_SESSION,
            (session.title, session.created, session.updated, session.system_prompt, session.model),
        )
        real = int(cur.lastrowid or 0)
        if session.id < 0:
            real_ids[session.id] = real
        session.id = real
        db.execute(_CLAIM, (real, history_side.HOST, os.getpid(), token, now))
    elif write.kind == "message":
        message = write.message
        assert message is not None
        session_id = resolve(message.session_id)
        meta = json.dumps(message.meta)
        cur = db.execute(
            history_side.INSERT_MESSAGE,
            (session_id, message.role, message.content, message.created, message.status, meta),
        )
        message.id, message.session_id = int(cur.lastrowid or 0), session_id
        db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (message.created, session_id))
        db.execute(
            "UPDATE session_owners SET seen = ? WHERE session_id = ? AND token = ?", (now, session_id, token)
        )
    elif write.kind == "claim":
        db.execute(_CLAIM, (resolve(write.session_id), history_side.HOST, os.getpid(), token, now))
    else:
        db.execute(write.sql, (*write.params, resolve(write.session_id)))


def replay(
    side: sqlite3.Connection,
    pending: list[Write],
    resolve_main: Callable[[int], int],
    known: Mapping[int, Session],
    token: str,
) -> None:
    """Apply `pending` writes to a side file. A write to a session of the main history goes to a side
    session that continues it (`continues_id`/`continues_created`), so merging appends it there."""
    ids: dict[int, int] = {}

    def resolve(session_id: int) -> int:
        session_id = resolve_main(session_id)
        if session_id < 0 or session_id in ids:
            return ids.get(session_id, session_id)
        session = known.get(session_id)
        now = time.time()
        title, created, updated, system_prompt, model = (
            (session.title, session.created, session.updated, session.system_prompt, session.model)
            if session is not None
            else ("Chat", None, now, None, None)
        )
        cur = side.execute(
            "INSERT INTO sessions (title, created, updated, system_prompt, model, continues_id,"
            " continues_created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (title, created or now, updated, system_prompt, model, session_id, created),
        )
        ids[session_id] = int(cur.lastrowid or 0)
        return ids[session_id]

    for write in pending:
        if write.kind == "claim":
            continue
        try:
            apply_write(side, write, resolve, token, ids)
        except sqlite3.Error as exc:
            history_side.log.warning("chat history: a write could not go to the side file either: %s", exc)


def owner_alive(host: str, pid: int, token: str, seen: float) -> bool:
    """Whether the chat that claimed a session may still be writing it."""
    if token in OPEN_STORES:
        return True
    if host != history_side.HOST:  # another machine sharing the file: trust a recent claim
        return time.time() - seen < history_side.OTHER_HOST_CLAIM_S
    if pid == os.getpid():
        return False  # a store of this process that is gone (closed or collected)
    return history_side.pid_alive(pid)
