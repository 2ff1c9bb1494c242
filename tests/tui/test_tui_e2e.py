"""End to end on the default model: a question through the real app, answered by llama.cpp."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


async def test_chat_answers_an_elixir_question_on_the_default_model(tmp_path: Path, wait_for) -> None:
    from potion import registry
    from potion.backends import LlamaCppBackend
    from tui.app import PotionChat
    from tui.history import HistoryStore
    from tui.once import answer_once

    backend = LlamaCppBackend(registry.resolve(), n_ctx=2048)
    store = HistoryStore.open(tmp_path / "chat.sqlite3")
    app = PotionChat(backend, store=store, workdir=tmp_path, max_tokens=48)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: not app.loading, timeout=120, what="model load")
        assert app.backend is not None, app.load_error
        screen = app.chat_screen
        screen.prompt.load_text("Write an Elixir function `add(a, b)` in a module Math. Only code.")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not screen.generating, timeout=180, what="answer")
        answer = screen.conversation.messages()[-1]
        assert answer.status == "complete", answer.content
        # A 0.5B model at temperature 0.2 varies; any Elixir-looking answer of a few tokens will do.
        assert answer.content.strip() and ("def" in answer.content or "Math" in answer.content), (
            answer.content
        )
        assert "tokens" in str(answer.border_subtitle)
        assert screen.status.context_used > 0
        session = store.sessions()[0]
        assert [m.role for m in store.messages(session.id)] == ["user", "assistant"]

    out = io.StringIO()
    text = answer_once(backend, "In one word: what Elixir keyword starts a module?", max_tokens=8, out=out)
    assert text.strip() and out.getvalue().strip() == text.strip()
    backend.close()
