"""Slash commands: the table the help screen shows, and parsing a line into a command."""

from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass

from tui.errors import CommandError


@dataclass(frozen=True)
class CommandSpec:
    name: str
    usage: str
    help: str
    min_args: int = 0
    max_args: int | None = 0  # None: the rest of the line is one free-text argument


COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in [
        CommandSpec(
            "model",
            "/model [NAME | URL [MODEL]]",
            "list models, or switch to a registry model or a server URL",
            0,
            2,
        ),
        CommandSpec(
            "system",
            "/system [PROMPT]",
            "show or set this chat's system prompt (`/system -` resets)",
            0,
            None,
        ),
        CommandSpec("file", "/file PATH", "attach a file as context for the next question", 1, 1),
        CommandSpec("explain", "/explain PATH[:LINE]", "explain a file, or the function around a line", 1, 1),
        CommandSpec("doc", "/doc PATH:FUNCTION", "draft an @doc for a function", 1, 1),
        CommandSpec(
            "scaffold", "/scaffold BEHAVIOUR Name [PATH]", "generate an OTP module, preview, write", 0, 3
        ),
        CommandSpec("clear", "/clear", "delete this chat's messages", 0, 0),
        CommandSpec("export", "/export [PATH]", "save this chat as Markdown", 0, 1),
        CommandSpec("help", "/help", "show commands and keys", 0, 0),
    ]
}

KEYS: list[tuple[str, str]] = [
    ("enter", "send"),
    ("shift+enter / ctrl+j", "new line"),
    ("escape", "stop the answer (the partial answer is kept)"),
    ("ctrl+o", "copy the selected code block (OSC 52)"),
    ("ctrl+s", "save the selected code block to a file"),
    ("tab, then [ / ]", "select a message, then its previous/next code block"),
    ("ctrl+n", "new chat"),
    ("f2", "rename chat"),
    ("f8", "delete chat"),
    ("ctrl+f", "search chats"),
    ("ctrl+b", "show/hide the chat list"),
    ("f1", "help"),
    ("ctrl+q", "quit"),
]


@dataclass(frozen=True)
class Command:
    name: str
    args: list[str]
    rest: str  # everything after the command name, unsplit (for /system)


def is_command(text: str) -> bool:
    """A line starting with `/word` is a command; `//` escapes a message that starts with a slash."""
    stripped = text.lstrip()
    return stripped.startswith("/") and not stripped.startswith("//") and len(stripped) > 1


def parse(text: str) -> Command:
    """Parse `/name args...`, raising CommandError for an unknown command or the wrong argument count."""
    stripped = text.strip()
    head, _, rest = stripped[1:].partition(" ")
    name = head.lower()
    spec = COMMANDS.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f"did you mean /{close[0]}?" if close else "type /help for the list"
        raise CommandError(f"unknown command /{head}", hint=hint)
    rest = rest.strip()
    if spec.max_args is None:
        return Command(name, [rest] if rest else [], rest)
    try:
        args = shlex.split(rest)
    except ValueError as exc:
        raise CommandError(f"/{name}: {exc}", hint=f"usage: {spec.usage}") from exc
    if len(args) < spec.min_args or len(args) > spec.max_args:
        raise CommandError(f"/{name} takes {_count(spec)}", hint=f"usage: {spec.usage}")
    return Command(name, args, rest)


def _count(spec: CommandSpec) -> str:
    if spec.min_args == spec.max_args:
        return (
            "no arguments" if spec.min_args == 0 else f"{spec.min_args} argument{'s' * (spec.min_args > 1)}"
        )
    return f"{spec.min_args} to {spec.max_args} arguments"


def help_markdown() -> str:
    # Lists, not tables: a `|` inside a usage would split a table cell, and lists wrap well at 80 columns.
    commands = "\n".join(f"- `{c.usage}`: {c.help}" for c in COMMANDS.values())
    keys = "\n".join(f"- `{k}`: {v}" for k, v in KEYS)
    return (
        f"## Commands\n\n{commands}\n\n## Keys\n\n{keys}\n\n"
        "Start a message with `//` to send text that begins with a slash. Esc closes this help."
    )
