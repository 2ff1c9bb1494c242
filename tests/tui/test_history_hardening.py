"""Chat history under damage, locks and concurrency (issue 17, finding 5), on real SQLite files:
a garbage page, a 0-byte file, two chats in two processes, an exclusive lock held by another
connection, side files read back."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sqlite_damage import checkpoint, garble_page, page_holding
from tui import history_side
from tui.history import HistoryStore, default_path

pytestmark = pytest.mark.timeout(120)


def filled(path: Path, sessions: int = 3, per_session: int = 200) -> dict[int, list[str]]:
    """A history of `sessions` chats of `per_session` messages each; {session id: contents}."""
    store = HistoryStore.open(path)
    contents: dict[int, list[str]] = {}
    for s in range(sessions):
        session = store.new_session(f"chat {s}")
        contents[session.id] = []
        for i in range(per_session):
            text = f"msg-{s}-{i:04d} " + "defmodule Stack do use GenServer end " * 2
            store.add_message(session.id, "user" if i % 2 == 0 else "assistant", text)
            contents[session.id].append(text)
    store.close()
    checkpoint(path)
    return contents


def exclusive(path: Path) -> sqlite3.Connection:
    """Another program holding the history's write lock."""
    holder = sqlite3.connect(path, isolation_level=None, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


# -- damage ------------------------------------------------------------------------------------------


def test_a_corrupt_page_loses_only_its_rows_and_the_user_is_told_once(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite3"
    contents = filled(path)
    garble_page(path, page_holding(path, b"msg-1-0100 "))

    store = HistoryStore.open(path)

    assert store.notice and "Chat history was damaged" in store.notice, store.notice
    assert "saved " in store.notice and "lost " in store.notice and ".corrupt-" in store.notice
    assert [s.title for s in store.sessions()] == ["chat 2", "chat 1", "chat 0"]
    kept = {s.id: [m.content for m in store.messages(s.id)] for s in store.sessions()}
    first, second, third = sorted(contents)
    assert kept[first] == contents[first] and kept[third] == contents[third]
    missing = [text for text in contents[second] if text not in kept[second]]
    assert 0 < len(missing) < 40 and contents[second][100] in missing
    assert [t for t in kept[second] if t in contents[second]] == kept[second]  # in order, intact
    store.new_session("after the repair")
    store.close()
    again = HistoryStore.open(path)
    assert again.notice is None  # told once: the repaired file is healthy
    assert len(list(tmp_path.glob("chat.sqlite3.corrupt-*"))) == 1


def test_messages_whose_session_row_was_lost_come_back_in_a_recovered_chat(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite3"
    store = HistoryStore.open(path)
    for i in range(120):  # enough sessions for their table to span pages of its own
        store.new_session(f"session-title-{i:04d} " + "x" * 60)
    lonely = store.new_session("session-title-lonely")
    store.add_message(lonely.id, "user", "a question whose chat row is lost")
    store.close()
    checkpoint(path)
    garble_page(path, page_holding(path, b"session-title-lonely"))

    store = HistoryStore.open(path)

    recovered = [s for s in store.sessions() if s.title == "Recovered chat"]
    assert len(recovered) == 1
    assert [m.content for m in store.messages(recovered[0].id)] == ["a question whose chat row is lost"]


def test_an_empty_history_file_is_reported_not_silently_replaced(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite3"
    path.write_bytes(b"")
    store = HistoryStore.open(path)
    assert store.notice and "empty (0 bytes)" in store.notice and "chat.sqlite3.corrupt-" in store.notice
    [kept] = tmp_path.glob("chat.sqlite3.corrupt-*")
    assert kept.stat().st_size == 0
    store.new_session("fresh")
    assert [s.title for s in store.sessions()] == ["fresh"]


# -- two chats on one history ------------------------------------------------------------------------


def test_a_session_written_by_one_chat_is_not_written_by_another(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite3"
    first = HistoryStore.open(path)
    shared = first.new_session("shared")
    second = HistoryStore.open(path)
    assert second.resumable() is None  # the only chat is another's
    assert not second.claim(shared.id)
    assert first.claim(shared.id)
    first.close()
    assert second.resumable().id == shared.id and second.claim(shared.id)


def test_a_chat_that_died_without_closing_leaves_its_sessions_free(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite3"
    script = (
        "import os, sys; from tui.history import HistoryStore; "
        "s = HistoryStore.open(sys.argv[1]); s.new_session('orphan'); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=60)
    store = HistoryStore.open(path)
    [orphan] = store.sessions()
    assert store.resumable().id == orphan.id and store.claim(orphan.id)


def test_two_chat_processes_on_one_history_keep_their_own_sessions(potion_home: Path, tmp_path: Path) -> None:
    path = default_path()
    store = HistoryStore.open(path)
    store.add_message(store.new_session("yesterday").id, "user", "an old question")
    store.close()
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    helper = Path(__file__).with_name("two_chats_app.py")
    chats = [
        subprocess.Popen(
            [sys.executable, str(helper), name, str(barrier), other],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, other in (("alpha", "beta"), ("beta", "alpha"))
    ]
    for chat in chats:
        out, err = chat.communicate(timeout=100)
        assert chat.returncode == 0, err[-3000:]

    store = HistoryStore.open(path)
    by_session = {s.title: [m.content for m in store.messages(s.id)] for s in store.sessions()}
    questions = {
        title: [c for c in texts if c.split()[0] in ("alpha", "beta")] for title, texts in by_session.items()
    }
    owners = {title: {q.split()[0] for q in qs} for title, qs in questions.items() if qs}
    assert all(len(names) == 1 for names in owners.values()), by_session  # no session has both chats
    for name in ("alpha", "beta"):
        [title] = [t for t, names in owners.items() if names == {name}]
        assert questions[title] == [f"{name} 1", f"{name} 2"]
        answers = [c for c in by_session[title] if c.startswith("answer for")]
        assert answers == [f"answer for {name}"] * 2
    assert by_session["yesterday"][0] == "an old question"


# -- locks: queue and retry, side files --------------------------------------------------------------


def test_an_answer_written_while_another_program_holds_the_lock_is_saved_later(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite3"
    store = HistoryStore.open(path, timeout=0.05)
    session = store.new_session("GenServer")
    store.add_message(session.id, "user", "how do I keep state?")
    holder = exclusive(path)
    try:
        answer = store.add_message(session.id, "assistant", "Use a GenServer.", meta={"tokens": 4})
        renamed = store.new_session("asked while locked")
        store.add_message(renamed.id, "user", "still here?")
        assert store.pending == 3
        # Reads show the queued writes meanwhile.
        assert [m.content for m in store.messages(session.id)][-1] == "Use a GenServer."
        assert store.sessions()[0].title == "asked while locked"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.flush(10)
    assert answer.id > 0 and renamed.id > 0
    store.close()
    reopened = HistoryStore.open(path)
    assert [(m.role, m.content, m.meta) for m in reopened.messages(session.id)] == [
        ("user", "how do I keep state?", {}),
        ("assistant", "Use a GenServer.", {"tokens": 4}),
    ]
    assert [m.content for m in reopened.messages(renamed.id)] == ["still here?"]


def test_writes_still_locked_out_at_close_go_to_a_side_file_that_is_merged_back(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite3"
    store = HistoryStore.open(path, timeout=0.05)
    session = store.new_session("long chat")
    store.add_message(session.id, "user", "first question")
    holder = exclusive(path)
    try:
        store.add_message(session.id, "assistant", "the answer that met the lock")
        fresh = store.new_session("started while locked")
        store.add_message(fresh.id, "user", "a new chat while locked")
        side = store.close()
        assert side is not None and side != path and side.exists()
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    reopened = HistoryStore.open(path)
    assert reopened.notice and "Merged" in reopened.notice, reopened.notice
    assert [m.content for m in reopened.messages(session.id)] == [
        "first question",
        "the answer that met the lock",
    ]
    [later] = [s for s in reopened.sessions() if s.title == "started while locked"]
    assert [m.content for m in reopened.messages(later.id)] == ["a new chat while locked"]
    assert not side.exists() and history_side.side_files(path) == []
    reopened.close()
    assert HistoryStore.open(path).notice is None  # merged once


def test_a_side_file_written_while_locked_at_open_is_read_back(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite3"
    HistoryStore.open(path).close()
    holder = exclusive(path)
    try:
        side = HistoryStore.open(path, timeout=0.05)
        assert side.side_of == path and "locked" in side.notice
        side.add_message(side.new_session("on the side").id, "user", "written to the side file")
        side.close()  # the lock is still held: the side file stays for a later run
        [side_file] = history_side.side_files(path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    store = HistoryStore.open(path)
    assert store.notice and "Merged 1 chat (1 messages)" in store.notice
    [merged] = store.sessions()
    assert merged.title == "on the side" and [m.content for m in store.messages(merged.id)] == [
        "written to the side file"
    ]
    assert not side_file.exists()


def test_a_side_store_closing_after_the_lock_is_gone_merges_itself_back(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite3"
    HistoryStore.open(path).close()
    holder = exclusive(path)
    side = HistoryStore.open(path, timeout=0.05)
    holder.execute("ROLLBACK")
    holder.close()
    side.add_message(side.new_session("merged at close").id, "user", "hello")
    side.close()
    assert history_side.side_files(path) == []
    assert [s.title for s in HistoryStore.open(path).sessions()] == ["merged at close"]


def test_a_side_file_of_a_running_chat_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite3"
    HistoryStore.open(path).close()
    holder = exclusive(path)
    side = HistoryStore.open(path, timeout=0.05)  # stays open: a chat still running
    holder.execute("ROLLBACK")
    holder.close()
    side.add_message(side.new_session("still running").id, "user", "hi")
    store = HistoryStore.open(path)
    assert store.notice is None and store.sessions() == []
    assert history_side.side_files(path) == [side.path]


async def test_the_chat_saves_an_answer_that_finished_while_the_history_was_locked(
    potion_home: Path, tmp_path: Path, wait_for
) -> None:
    from potion.backends import FakeBackend, ModelInfo
    from tui.app import PotionChat

    path = default_path()
    store = HistoryStore.open(path, timeout=0.1)
    backend = FakeBackend(" ".join(["token"] * 60), token_delay=0.01, info=ModelInfo(name="fake", n_ctx=4096))
    app = PotionChat(backend, store=store, workdir=tmp_path)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: not app.loading, what="model")
        screen = app.chat_screen
        screen.prompt.load_text("what is a GenServer?")
        screen.prompt.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.displayed_tokens >= 3, what="streaming")
        holder = exclusive(path)  # another program takes the lock while the answer streams
        try:
            await wait_for(pilot, lambda: not screen.generating, what="answer finished")
            assert store.pending >= 1
            assert [text for severity, text in app.notices if severity == "error"] == []
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        await wait_for(pilot, lambda: store.pending == 0, what="queued answer written")
    reopened = HistoryStore.open(path)
    [session] = reopened.sessions()
    user, answer = reopened.messages(session.id)
    assert user.content == "what is a GenServer?"
    assert (answer.role, answer.status) == ("assistant", "complete") and answer.content.count("token") == 60
