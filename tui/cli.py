"""`potion chat`: the terminal chat, or one answer with `--once`.

Registered through the `potion.commands` entry point. Textual and the backends are imported inside
`run`, so `potion --help` does not pay for them.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from potion.cli_args import add_command, arg


@dataclass
class ChatArgs:
    """The flags of `potion chat`; invalid values raise ValueError naming the flag."""

    model: str | None = arg("registry model name or GGUF path (default: the default model)", default=None)
    url: str | None = arg(
        "an OpenAI-compatible server instead of a local model; several, separated by commas, make a pool",
        default=None,
    )
    once: str | None = arg(
        "print one streamed answer and exit (- reads stdin)", default=None, metavar="QUESTION"
    )
    system: str | None = arg("system prompt for --once", default=None)
    history: bool = arg("save the --once question and answer to the chat history", default=True)
    max_tokens: int = arg("longest answer in tokens", default=768)
    n_ctx: int = arg("context size in tokens", default=4096)

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"--max-tokens must be at least 1, got {self.max_tokens}")
        if self.n_ctx < 256:
            raise ValueError(f"--n-ctx must be at least 256, got {self.n_ctx}")
        if self.max_tokens >= self.n_ctx:
            raise ValueError(f"--max-tokens ({self.max_tokens}) must be smaller than --n-ctx ({self.n_ctx})")
        if self.url is not None:
            from potion.backends.pool import parse_urls

            try:
                parse_urls(self.url)
            except ValueError as exc:
                raise ValueError(f"--url: {exc}") from exc
        if self.once is not None and not self.once.strip():
            raise ValueError("--once needs a question (or - to read it from stdin)")


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(
        subparsers,
        "chat",
        ChatArgs,
        run,
        help="chat about Elixir in the terminal",
        description="A terminal chat for Elixir questions, scaffolds and explanations. Type /help inside.",
    )


def run(args: ChatArgs) -> int:
    from potion.backends import open_backend

    def factory(model: str | None, url: str | None):  # noqa: ANN202 - a Backend
        return open_backend(model, url=url, n_ctx=args.n_ctx)

    if args.once is not None:
        from tui.once import answer_once

        question = sys.stdin.read() if args.once == "-" else args.once
        backend = factory(args.model, args.url)
        store = _once_history() if args.history else None
        try:
            answer_once(backend, question, system_prompt=args.system, max_tokens=args.max_tokens, store=store)
        finally:
            backend.close()
            if store is not None and (side := store.close()) is not None:
                print(f"potion: chat history was locked; this answer was saved to {side}", file=sys.stderr)
        return 0

    from tui.app import PotionChat

    PotionChat(
        backend_factory=factory,
        model=args.model,
        url=args.url,
        workdir=Path.cwd(),
        max_tokens=args.max_tokens,
    ).run()
    return 0


def _once_history():  # noqa: ANN202 - a HistoryStore, or None when the history cannot be opened
    """The chat history for `--once`; a problem with it is one line on stderr, never a lost answer."""
    from tui.errors import HistoryError
    from tui.history import HistoryStore

    try:
        store = HistoryStore.open()
    except HistoryError as exc:
        print(f"potion: {exc.user_message()}; this answer is not saved to the history", file=sys.stderr)
        return None
    if store.notice:
        print(f"potion: {store.notice}", file=sys.stderr)
    return store
