"""What the chat sends to the model: attached files, /explain and /doc prompts, context trimming.

Plain functions, no Textual, so they are tested directly and shared with `potion chat --once`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from potion import task_prompts
from potion.elixir import FunctionDef, analyze, attribute_block_start, scope_at
from potion.errors import InvalidSource
from potion.sources import read_text_source
from potion.task_prompts import fenced
from tui.errors import AttachError, InputTooLarge
from tui.history import StoredMessage

DEFAULT_SYSTEM_PROMPT = task_prompts.SYSTEM_PROMPT

MAX_FILE_BYTES = 256 * 1024  # larger files never fit a local model's context anyway
MAX_PASTE_CHARS = 200_000  # a paste beyond this is refused before it reaches the text area
SNIPPET_CONTEXT_LINES = 15  # lines either side of /explain PATH:LINE when no enclosing function is found

_LANGUAGES = {
    ".ex": "elixir",
    ".exs": "elixir",
    ".eex": "html",
    ".heex": "html",
    ".leex": "html",
    ".erl": "erlang",
    ".hrl": "erlang",
    ".json": "json",
    ".md": "markdown",
    ".py": "python",
    ".js": "javascript",
    ".ts": "typescript",
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
}


def language_for(path: str | Path) -> str:
    """The code-fence language for a file, so attached Elixir is highlighted as Elixir."""
    return _LANGUAGES.get(Path(path).suffix.lower(), "")


def read_text_file(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> str:
    """Read a UTF-8 source file, refusing missing, binary and oversized files with a clear error."""
    if not path.exists():
        raise AttachError(
            f"no such file: {path}", hint="paths are relative to the folder potion chat started in"
        )
    if path.is_file() and (size := path.stat().st_size) > max_bytes:
        raise AttachError(
            f"{path.name} is {size / 1024:.0f} KB, larger than the {max_bytes // 1024} KB limit",
            hint="attach a smaller file or use /explain PATH:LINE for one function",
        )
    try:
        return read_text_source(path)
    except InvalidSource as exc:
        raise AttachError(exc.message, hint=exc.hint) from None


def parse_path_line(arg: str) -> tuple[str, int | None]:
    """Split `lib/foo.ex:12` into ("lib/foo.ex", 12); a path without a line number gives None."""
    match = re.fullmatch(r"(.+?):(\d+)(?::\d+)?", arg.strip())
    if match:
        return match.group(1), int(match.group(2))
    return arg.strip(), None


def attachment_content(display_path: str, text: str) -> str:
    """How an attached file is given to the model (and shown in the chat)."""
    return fenced(text, language_for(display_path), f"File `{display_path}`:")


# -- Elixir spans (found with potion.elixir's tree-sitter analysis) -------------------------------------


@dataclass(frozen=True)
class Span:
    """1-based inclusive line range of a snippet, and what it is (for the prompt)."""

    start: int
    end: int
    label: str


def _span(source: str, fn: FunctionDef) -> Span:
    lines = source.splitlines()
    return Span(attribute_block_start(lines, fn.line) + 1, fn.end_line + 1, f"function {fn.name}/{fn.arity}")


def enclosing_function(source: str, line: int) -> Span | None:
    """All clauses of the function containing 1-based `line`, with their @spec, if there is one."""
    lines = source.splitlines()
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    column = len(text) - len(text.lstrip())
    scope = scope_at(analyze(source), line - 1, column)
    return _span(source, scope.function) if scope.function else None


def function_span(source: str, name: str) -> Span | None:
    """The function `name` or `name/arity` in any module of `source`."""
    bare, _, arity_text = name.partition("/")
    arity = int(arity_text) if arity_text.strip().isdigit() else None
    for mod in analyze(source).modules:
        fn = mod.function(bare.strip(), arity)
        if fn is not None:
            return _span(source, fn)
    return None


def module_name(source: str) -> str | None:
    modules = analyze(source).modules
    return modules[0].name if modules else None


def snippet(source: str, span: Span) -> str:
    return "\n".join(source.splitlines()[span.start - 1 : span.end])


def explain_prompt(display_path: str, source: str, line: int | None) -> str:
    """The user message for `/explain PATH[:LINE]`: the enclosing function, or a window, or the file."""
    total = len(source.splitlines())
    if line is not None and not 1 <= line <= max(total, 1):
        raise AttachError(f"{display_path} has {total} lines; there is no line {line}")
    if line is None:
        span = Span(1, total, "file")
    else:
        span = enclosing_function(source, line) or Span(
            max(1, line - SNIPPET_CONTEXT_LINES),
            min(total, line + SNIPPET_CONTEXT_LINES),
            f"code around line {line}",
        )
    return task_prompts.explain_prompt(
        snippet(source, span),
        what=span.label,
        module=module_name(source),
        where=f"{display_path}:{span.start}-{span.end}",
        language=language_for(display_path),
    )


def doc_prompt(display_path: str, source: str, function: str) -> str:
    """The user message for `/doc PATH:FUNCTION`: ask for an `@doc` heredoc for that function."""
    span = function_span(source, function)
    if span is None:
        raise AttachError(
            f"no function `{function}` in {display_path}", hint="write it as PATH:name or PATH:name/arity"
        )
    return task_prompts.write_doc_prompt(
        snippet(source, span),
        function=function,
        module=module_name(source),
        where=f"{display_path}:{span.start}",
    )


# -- conversation -> backend messages ----------------------------------------------------------------


def chat_messages(system_prompt: str | None, history: Sequence[StoredMessage]) -> list[dict[str, str]]:
    """The backend's view of a conversation.

    Attached files are folded into the next user message (chat templates expect user/assistant turns);
    files attached after the last user message still go with it. Failed answers with no text are skipped.
    """
    out: list[dict[str, str]] = [{"role": "system", "content": system_prompt or DEFAULT_SYSTEM_PROMPT}]
    pending: list[str] = []
    for message in history:
        if message.role == "context":
            pending.append(message.content)
        elif message.role == "user":
            out.append({"role": "user", "content": "\n\n".join([*pending, message.content])})
            pending = []
        elif message.role == "assistant" and message.content.strip():
            out.append({"role": "assistant", "content": message.content})
    if pending:
        if out[-1]["role"] == "user":
            out[-1]["content"] = "\n\n".join([*pending, out[-1]["content"]])
        else:
            out.append({"role": "user", "content": "\n\n".join(pending)})
    return out


def fit_messages(
    messages: list[dict[str, str]], count_tokens: Callable[[str], int], budget: int
) -> tuple[list[dict[str, str]], int, int]:
    """Drop the oldest turns until the conversation fits `budget` tokens.

    The system prompt and the last message are always kept; if those alone do not fit, the message is
    too large to send. Returns (messages, tokens used, number of messages dropped).
    """
    sizes = [count_tokens(m["content"]) + 4 for m in messages]  # +4: the template's role markers
    keep_head, keep_tail = sizes[0], sizes[-1]
    if keep_head + keep_tail > budget:
        raise InputTooLarge(
            f"the message is about {keep_tail} tokens; "
            f"the model's context leaves room for {budget - keep_head}",
            hint="trim it, or attach one function with /explain PATH:LINE",
        )
    total = sum(sizes)
    start = 1
    while total > budget and start < len(messages) - 1:
        total -= sizes[start]
        start += 1
    return [messages[0], *messages[start:]], total, start - 1
