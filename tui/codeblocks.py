"""Code blocks of an answer (for copy and save) and a chat exported as Markdown."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from markdown_it import MarkdownIt

from potion.scaffolds import module_path
from tui.history import Session, StoredMessage

_PARSER = MarkdownIt("commonmark")


@dataclass(frozen=True)
class CodeBlock:
    language: str
    code: str


def code_blocks(markdown: str) -> list[CodeBlock]:
    """Fenced and indented code blocks, in order. An unclosed fence (an interrupted answer) counts."""
    return [
        CodeBlock(token.info.strip().split(" ")[0] if token.info else "", token.content)
        for token in _PARSER.parse(markdown)
        if token.type in ("fence", "code_block")
    ]


_EXTENSIONS = {
    "elixir": ".ex",
    "ex": ".ex",
    "exs": ".exs",
    "erlang": ".erl",
    "python": ".py",
    "json": ".json",
}


def suggested_filename(block: CodeBlock, index: int) -> str:
    """A file name for a saved block: `lib/<module>.ex` for a defmodule, else `snippet-N.<ext>`."""
    m = re.search(r"^\s*defmodule\s+([A-Z][\w.]*)", block.code, re.M)
    if m and block.language in ("elixir", "ex", ""):
        return module_path(m.group(1))  # Macro.underscore rules: HTTPCache -> http_cache
    return f"snippet-{index + 1}{_EXTENSIONS.get(block.language, '.txt')}"


def export_markdown(session: Session, messages: Sequence[StoredMessage], *, model: str | None = None) -> str:
    """The chat as a Markdown document: one heading per turn, attachments and answers as they were."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(session.created))
    lines = [f"# {session.title}", "", f"_Exported from Potion chat; started {when}"]
    lines[-1] += f", model {model}._" if model else "._"
    if session.system_prompt:
        lines += ["", "**System prompt:** " + session.system_prompt]
    for message in messages:
        if message.role == "context":
            heading = "## Attached file"
        elif message.role == "user":
            heading = "## You"
        else:
            heading = "## Potion"
            if message.status == "interrupted":
                heading += " (interrupted)"
            elif message.status == "error":
                heading += " (failed)"
        lines += ["", heading, "", message.content.rstrip()]
    return "\n".join(lines) + "\n"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "chat"
