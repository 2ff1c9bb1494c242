"""`potion chat --once QUESTION`: one streamed answer on stdout, no terminal UI (scripts, quick checks)."""

from __future__ import annotations

import sys
from typing import TextIO

from potion.backends.base import Backend
from tui.context import DEFAULT_SYSTEM_PROMPT, fit_messages


def answer_once(
    backend: Backend,
    question: str,
    *,
    system_prompt: str | None = None,
    max_tokens: int = 768,
    out: TextIO | None = None,
) -> str:
    """Stream the answer to `out` (stdout) piece by piece; return the whole answer."""
    out = out or sys.stdout
    messages = [
        {"role": "system", "content": system_prompt or DEFAULT_SYSTEM_PROMPT},
        {"role": "user", "content": question},
    ]
    backend.load()
    budget = backend.info.n_ctx - max_tokens
    messages, _, _ = fit_messages(messages, lambda t: len(backend.tokenize(t)), budget)
    pieces = []
    for piece in backend.chat(messages, max_tokens=max_tokens):
        pieces.append(piece)
        out.write(piece)
        out.flush()
    text = "".join(pieces)
    if not text.endswith("\n"):
        out.write("\n")
        out.flush()
    return text
