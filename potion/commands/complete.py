"""`potion complete FILE --line L --col C`: complete code at a position, streamed to stdout.

The one-shot form of what the language server does on each keystroke, for scripts, demos and debugging
a model: the same pipeline (`potion.completion`: prompt, stop rule, post-processing) with the same
defaults, so it prints the suggestion the editor would show, streamed as each part of it becomes final.
Lines and columns are 1-based characters (a tab is one character); the column may be one past the end
of the line.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from potion import completion
from potion.backends import Backend, open_backend
from potion.backends.pool import parse_urls
from potion.cli_args import add_command, arg
from potion.completion import DEFAULT_SETTINGS, CompletionStream
from potion.errors import InvalidSource
from potion.sources import read_text_source

# Prompt room left for the answer's tokens and the template's own, on top of --max-tokens.
_MARGIN_TOKENS = 16


@dataclass
class CompleteArgs:
    """The flags of `potion complete`; invalid values raise ValueError naming the flag."""

    file: Path = arg("source file", positional=True)
    line: int = arg("1-based line of the cursor")
    col: int = arg("1-based column (characters) of the cursor")
    model: str | None = arg(
        "registry name, hf: spec or .gguf path (default: the default model)", default=None
    )
    url: str | None = arg(
        "OpenAI-compatible server instead of in-process llama.cpp; several, separated by commas, make a pool",
        default=None,
    )
    max_tokens: int = arg("most tokens to generate (as the editor)", default=DEFAULT_SETTINGS.max_tokens)
    context_tokens: int = arg(
        "prompt budget for the file around the cursor", default=DEFAULT_SETTINGS.prompt_tokens
    )
    n_ctx: int = arg("context window of the in-process model", default=4096)

    def __post_init__(self) -> None:
        self.file = Path(self.file)
        if self.line < 1:
            raise ValueError(f"--line must be 1 or more (lines are 1-based), got {self.line}")
        if self.col < 1:
            raise ValueError(f"--col must be 1 or more (columns are 1-based), got {self.col}")
        if not 1 <= self.max_tokens <= 4096:
            raise ValueError(f"--max-tokens must be between 1 and 4096, got {self.max_tokens}")
        if self.context_tokens < 64:
            raise ValueError(f"--context-tokens must be at least 64, got {self.context_tokens}")
        if self.n_ctx < 256:
            raise ValueError(f"--n-ctx must be at least 256, got {self.n_ctx}")
        if self.url is not None:
            if not self.url.startswith(("http://", "https://")):
                raise ValueError(f"--url must start with http:// or https://, got {self.url!r}")
            try:
                parse_urls(self.url)  # several, separated by commas, make a pool
            except ValueError as exc:
                raise ValueError(f"--url: {exc}") from exc


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(
        subparsers,
        "complete",
        CompleteArgs,
        complete,
        help="complete code at FILE:LINE:COL, streamed to stdout",
    )


def complete(args: CompleteArgs, *, backend: Backend | None = None, out: TextIO | None = None) -> int:
    """Stream the completion at the cursor to `out` (stdout), one flush per piece."""
    out = out or sys.stdout
    text = read_text_source(args.file)
    prefix, suffix = split_at(text, args.line, args.col, path=args.file)
    backend = backend or open_backend(args.model, url=args.url, n_ctx=args.n_ctx)
    try:
        backend.load()  # an unreachable server or a broken model fails here, before any warning
        info = backend.info
        budget = min(args.context_tokens, info.n_ctx - args.max_tokens - _MARGIN_TOKENS)
        if budget < 16:
            raise ValueError(f"--max-tokens {args.max_tokens} leaves no room in a {info.n_ctx}-token context")
        settings = dataclasses.replace(DEFAULT_SETTINGS, max_tokens=args.max_tokens, prompt_tokens=budget)
        # The editor names a file by its absolute path: the same prompt for the same cursor.
        prompt = completion.build_prompt(
            prefix,
            suffix,
            info=info,
            tokenize=backend.tokenize,
            settings=settings,
            path=str(args.file.resolve()),
        )
        if prompt.warning:
            print(f"potion: warning: {prompt.warning}", file=sys.stderr)
        wrote = ""

        def show(text: str) -> None:
            nonlocal wrote
            out.write(text)
            out.flush()
            wrote += text

        stream = CompletionStream(
            completion.cursor_context(prefix, suffix), indent=prompt.indent, settings=settings
        )
        completion.generate(backend, prompt, stream, max_tokens=args.max_tokens, on_text=show)
        if out.isatty() and not wrote.endswith("\n"):
            out.write("\n")
    finally:
        backend.close()
    return 0


def split_at(text: str, line: int, col: int, *, path: Path | str = "<text>") -> tuple[str, str]:
    """Prefix and suffix of `text` around a 1-based line and column (characters, "\\r" not counted)."""
    lines = text.split("\n")
    if line > len(lines):
        # The empty "line" after a final newline is a valid cursor position but not a line to a user.
        count = len(lines) - (1 if text.endswith("\n") else 0)
        raise InvalidSource(f"--line {line} is past the end of {path} ({count} lines)", hint="check --line")
    current = lines[line - 1]
    width = len(current) - (1 if current.endswith("\r") else 0)
    if col > width + 1:
        raise InvalidSource(
            f"--col {col} is past the end of line {line} of {path} ({width} characters)",
            hint=f"use --col {width + 1} or less",
        )
    offset = sum(len(s) + 1 for s in lines[: line - 1]) + col - 1
    return text[:offset], text[offset:]
