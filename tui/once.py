"""`potion chat --once QUESTION`: one streamed answer on stdout, no terminal UI (scripts, quick checks)."""

from __future__ import annotations

import sys
from typing import TextIO

from potion.backends.base import Backend
from potion.errors import PotionError
from tui.context import DEFAULT_SYSTEM_PROMPT, fit_messages
from tui.errors import HistoryError
from tui.history import HistoryStore, Session, session_title


def answer_once(
    backend: Backend,
    question: str,
    *,
    system_prompt: str | None = None,
    max_tokens: int = 768,
    out: TextIO | None = None,
    store: HistoryStore | None = None,
) -> str:
    """Stream the answer to `out` (stdout) piece by piece; return the whole answer.

    With a `store`, the question and the answer are saved as a new chat (the answer as "interrupted" or
    "error" when generation stops early); a history that fails to save is one line on stderr.
    """
    out = out or sys.stdout
    messages = [
        {"role": "system", "content": system_prompt or DEFAULT_SYSTEM_PROMPT},
        {"role": "user", "content": question},
    ]
    backend.load()
    budget = backend.info.n_ctx - max_tokens
    messages, _, _ = fit_messages(messages, lambda t: len(backend.tokenize(t)), budget)
    saver = _Saver(store, question, system_prompt, backend.info.name)
    pieces: list[str] = []
    try:
        for piece in backend.chat(messages, max_tokens=max_tokens):
            pieces.append(piece)
            out.write(piece)
            out.flush()
    except KeyboardInterrupt:
        saver.answer("".join(pieces), "interrupted", {})
        raise
    except (PotionError, OSError, RuntimeError, ValueError) as exc:
        saver.answer("".join(pieces), "error", {"error": str(exc)})
        raise
    text = "".join(pieces)
    saver.answer(text, "complete", {"tokens": len(pieces)})
    if not text.endswith("\n"):
        out.write("\n")
        out.flush()
    return text


class _Saver:
    """Saves one question and its answer; the first history error is told once and saving stops."""

    def __init__(
        self, store: HistoryStore | None, question: str, system_prompt: str | None, model: str
    ) -> None:
        self.store, self.session = store, None
        self._save(lambda: self._start(question, system_prompt, model))

    def _start(self, question: str, system_prompt: str | None, model: str) -> None:
        assert self.store is not None
        session: Session = self.store.new_session(session_title(question), system_prompt=system_prompt)
        self.store.set_model(session.id, model or None)
        self.store.add_message(session.id, "user", question)
        self.session = session

    def answer(self, text: str, status: str, meta: dict) -> None:
        if self.session is not None:
            session = self.session
            self._save(
                lambda: self.store.add_message(session.id, "assistant", text, status=status, meta=meta)
            )

    def _save(self, write) -> None:  # noqa: ANN001 - a thunk
        if self.store is None:
            return
        try:
            write()
        except HistoryError as exc:
            print(f"potion: {exc.user_message()}; this answer is not saved to the history", file=sys.stderr)
            self.store, self.session = None, None
