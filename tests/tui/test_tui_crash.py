"""Crash recovery: a process killed mid-answer loses only that answer; reopening shows the question."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from potion.backends import FakeBackend
from tui.app import PotionChat
from tui.history import HistoryStore, default_path

HELPER = Path(__file__).with_name("crash_app.py")


async def test_crash_mid_answer_keeps_the_question(potion_home: Path, wait_for) -> None:
    result = subprocess.run([sys.executable, str(HELPER)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 17, result.stderr[-2000:]

    store = HistoryStore.open(default_path())
    assert store.notice is None  # WAL recovered cleanly: no corruption
    [session] = store.sessions()
    assert [(m.role, m.content) for m in store.messages(session.id)] == [
        ("user", "question before the crash")
    ]
    store.close()

    app = PotionChat(FakeBackend("recovered answer"))
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: not app.loading, what="model")
        shown = [(v.role, v.content) for v in app.chat_screen.conversation.messages()]
        assert shown[0] == ("user", "question before the crash")
        assert shown[1][0] == "info" and "Send it again" in shown[1][1]
