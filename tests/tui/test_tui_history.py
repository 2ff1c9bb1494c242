"""HistoryStore: sessions and messages, search, migrations from the first schema, corrupt/locked files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tui.errors import HistoryError
from tui.history import MIGRATIONS, SCHEMA_VERSION, HistoryStore


def test_sessions_messages_roundtrip(tmp_path: Path) -> None:
    store = HistoryStore.open(tmp_path / "chat.sqlite3")
    a = store.new_session("GenServer state")
    b = store.new_session("Ecto question", system_prompt="be brief")
    store.add_message(a.id, "user", "how do I keep state?")
    store.add_message(a.id, "assistant", "Use `GenServer`.", status="interrupted", meta={"tokens": 3})
    store.add_message(b.id, "context", "File `lib/x.ex`", meta={"path": "lib/x.ex", "tokens": 9})
    store.close()

    reopened = HistoryStore.open(tmp_path / "chat.sqlite3")
    assert reopened.notice is None
    assert [s.title for s in reopened.sessions()] == ["Ecto question", "GenServer state"]
    assert reopened.session(b.id).system_prompt == "be brief"
    msgs = reopened.messages(a.id)
    assert [(m.role, m.status) for m in msgs] == [("user", "complete"), ("assistant", "interrupted")]
    assert msgs[1].meta == {"tokens": 3}
    assert reopened.messages(b.id)[0].meta["path"] == "lib/x.ex"


def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    store = HistoryStore.open(tmp_path / "chat.sqlite3")
    assert store.schema_version == SCHEMA_VERSION
    mode = store._conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_rename_delete_clear(tmp_path: Path) -> None:
    store = HistoryStore.open(tmp_path / "chat.sqlite3")
    s = store.new_session("old")
    store.add_message(s.id, "user", "q")
    store.rename_session(s.id, "  new   title ")
    assert store.session(s.id).title == "new title"
    with pytest.raises(HistoryError):
        store.rename_session(s.id, "   ")
    store.clear_session(s.id)
    assert store.messages(s.id) == []
    store.add_message(s.id, "user", "again")
    store.delete_session(s.id)
    assert store.session(s.id) is None
    # ON DELETE CASCADE: the messages went with it.
    assert store._conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0


def test_search_titles_and_messages(tmp_path: Path) -> None:
    store = HistoryStore.open(tmp_path / "chat.sqlite3")
    a = store.new_session("Supervisors")
    b = store.new_session("Misc")
    store.add_message(b.id, "assistant", "use a DynamicSupervisor for 100% of the workers")
    store.new_session("Unrelated")
    assert {s.id for s in store.search("supervisor")} == {a.id, b.id}
    assert [s.id for s in store.search("100%")] == [b.id]  # LIKE wildcards are escaped
    assert store.search("50%") == []
    assert len(store.search("")) == 3


def test_migrates_a_database_made_with_the_first_schema(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    conn.execute("INSERT INTO sessions (id, title, created, updated) VALUES (1, 'from v1', 1.0, 2.0)")
    conn.execute(
        "INSERT INTO messages (session_id, role, content, created) VALUES (1, 'user', 'old question', 1.5)"
    )
    conn.commit()
    conn.close()

    store = HistoryStore.open(path)
    assert store.notice is None
    assert store.schema_version == SCHEMA_VERSION
    [session] = store.sessions()
    assert (session.title, session.system_prompt, session.model) == ("from v1", None, None)
    [message] = store.messages(1)
    assert (message.content, message.status, message.meta) == ("old question", "complete", {})
    indexes = {r[0] for r in store._conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "messages_by_session" in indexes


def test_corrupt_database_is_backed_up_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite3"
    path.write_bytes(b"this is not sqlite at all" * 100)
    store = HistoryStore.open(path)
    assert store.notice and "moved it to chat.sqlite3.corrupt-" in store.notice
    backups = list(tmp_path.glob("chat.sqlite3.corrupt-*"))
    assert len(backups) == 1 and backups[0].read_bytes().startswith(b"this is not sqlite")
    assert store.sessions() == []
    store.new_session("works")
    assert [s.title for s in store.sessions()] == ["works"]


def test_database_from_a_newer_potion_is_kept_aside(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    store = HistoryStore.open(path)
    assert "newer" in store.notice
    assert list(tmp_path.glob("chat.sqlite3.corrupt-*"))
    assert store.schema_version == SCHEMA_VERSION


def test_locked_database_is_left_alone_and_a_side_file_used(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite3"
    first = HistoryStore.open(path)
    first.add_message(first.new_session("keep me").id, "user", "precious")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        store = HistoryStore.open(path, timeout=0.05)
        assert store.notice and "locked" in store.notice
        assert store.path != path and store.path.parent == tmp_path
        store.add_message(store.new_session("side").id, "user", "still saved")
        assert [m.content for m in store.messages(store.sessions()[0].id)] == ["still saved"]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # The locked database was not touched.
    assert [s.title for s in HistoryStore.open(path).sessions()] == ["keep me"]


def test_write_failure_is_a_history_error(tmp_path: Path) -> None:
    store = HistoryStore.open(tmp_path / "chat.sqlite3")
    store.close()
    with pytest.raises(HistoryError, match="could not save"):
        store.new_session("x")


def test_unopenable_path_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite3").mkdir()
    with pytest.raises(HistoryError):
        HistoryStore.open(tmp_path / "dir.sqlite3")
