"""The chat on a model whose worker process crashes mid-answer (a scripted backend in the real worker,
tests/potion/worker_fakes.py): one notice, the chat lives on, the next question is answered."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from potion.backends import SupervisedLlamaCpp
from potion.backends.supervised import Backoff
from tui.app import PotionChat

pytestmark = pytest.mark.timeout(180)

WORKER_FAKES = Path(__file__).resolve().parents[1] / "potion"
SLOW = 60.0  # starting a worker process on a busy machine takes seconds


@pytest.fixture
def backend(potion_home: Path, make_gguf, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(WORKER_FAKES), os.environ.get("PYTHONPATH", "")]))
    script = {"responses": ["Use a `GenServer`."], "abort_on": "BOOM"}
    monkeypatch.setenv("POTION_TEST_WORKER", json.dumps(script))
    model = make_gguf("m.gguf", metadata={"general.architecture": "qwen2"}, tensors=[("t", [32], 0)])
    b = SupervisedLlamaCpp(
        model, n_ctx=4096, worker_backend="worker_fakes:scripted", backoff=Backoff(first=0.01)
    )
    yield b
    b.close()


async def ask(pilot, wait_for, text: str) -> None:
    prompt = pilot.app.chat_screen.prompt
    prompt.load_text(text)
    prompt.focus()
    await pilot.press("enter")
    await wait_for(pilot, lambda: not pilot.app.chat_screen.generating, timeout=SLOW, what="answer finished")


async def test_a_worker_crash_mid_answer_is_one_notice_and_the_chat_goes_on(
    backend, workdir, wait_for
) -> None:
    app = PotionChat(backend, workdir=workdir)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: not app.loading and app.screen.query("PromptInput"), timeout=SLOW)
        await ask(pilot, wait_for, "BOOM: how do I keep state?")
        answer = app.chat_screen.conversation.messages()[-1]
        assert answer.status == "error"
        crashes = [
            text for severity, text in app.notices if severity == "error" and "crashed (SIGABRT)" in text
        ]
        assert len(crashes) == 1 and "GGML_ASSERT(fake crash mid-stream)" in crashes[0]
        await ask(pilot, wait_for, "how do I keep state?")
        answer = app.chat_screen.conversation.messages()[-1]
        assert answer.status == "complete" and "GenServer" in answer.content
        assert backend.starts == 2
