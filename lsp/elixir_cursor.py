"""What the text around a cursor names: `Mod.fun` being typed, or the call or module under the mouse.

Plain string functions over one line (Python `str` columns, i.e. code points); the features convert
LSP positions first. Regexes, not the syntax tree: a line being typed is rarely valid Elixir.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from potion.elixir.model import ModuleDef

_MODULE = r"(?:[A-Z][A-Za-z0-9_]*)(?:\.[A-Z][A-Za-z0-9_]*)*"
_FUN = r"[a-z_][A-Za-z0-9_]*[?!]?"

# `Enum.ma|`, `MyApp.Worker.|`, `__MODULE__.st|`, `:ets.|` (Erlang modules, looked up as `:ets`).
_QUALIFIED = re.compile(rf"(?<![\w.@])(?P<mod>{_MODULE}|__MODULE__|:[a-z][a-z0-9_]*)\.(?P<fun>{_FUN}|)$")
# `Enu|` or `MyApp.Wor|`: a module name being typed (not preceded by a dot, so not a call's module part).
_MODULE_PREFIX = re.compile(rf"(?<![\w.@:])(?P<mod>(?:{_MODULE}\.)?(?:[A-Z][A-Za-z0-9_]*)?)$")
# `ma|` at the start of an expression: a local or imported function (`@doc`, `:atom`, `&` excluded).
_LOCAL = re.compile(rf"(?<![\w.@:])(?P<fun>{_FUN})$")
# `@sp|`: a module attribute.
_ATTRIBUTE = re.compile(r"(?<![\w@])@(?P<name>[a-z_]*)$")
# `def|`, `  handle_|` alone on a line: where a new function definition goes.
_DEF_START = re.compile(r"^(?P<indent>\s*)(?P<word>(?:def\s+)?[a-z_]*)$")


@dataclass(frozen=True)
class Typed:
    """What is being typed before the cursor.

    kind: "call" (`Mod.fun` prefix), "module" (module name prefix), "local" (bare function name prefix),
    "attribute" (`@na`) or "none". `prefix` is the partial name to replace; `module` the module
    expression as written.
    """

    kind: str
    prefix: str = ""
    module: str | None = None


def typed_before(line_prefix: str) -> Typed:
    """Classify the text before the cursor on its line."""
    if _inside_string_or_comment(line_prefix):
        return Typed("none")
    if m := _ATTRIBUTE.search(line_prefix):
        return Typed("attribute", m["name"])
    if m := _QUALIFIED.search(line_prefix):
        return Typed("call", m["fun"], m["mod"])
    if (m := _MODULE_PREFIX.search(line_prefix)) and m["mod"]:
        return Typed("module", m["mod"])
    if m := _LOCAL.search(line_prefix):
        return Typed("local", m["fun"])
    return Typed("none")


def def_start(line_prefix: str, line_suffix: str) -> tuple[str, str] | None:
    """(indent, word) when the cursor is on an otherwise empty line or after a lone word there."""
    if line_suffix.strip():
        return None
    m = _DEF_START.match(line_prefix)
    return (m["indent"], m["word"]) if m else None


def _inside_string_or_comment(text: str) -> bool:
    """True when `text` ends inside a `"..."` string or after a `#` comment (single line heuristic)."""
    quote = False
    escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quote = not quote
        elif ch == "#" and not quote:
            return True
    return quote


@dataclass(frozen=True)
class Target:
    """The thing under the cursor: a module (`name` None), a function of a module, or a local call."""

    module: str | None
    name: str | None
    start: int  # column span of the text naming it on the line, for the hover's range
    end: int


_MODULE_EXPR = re.compile(r"(?:__MODULE__|:[a-z][a-z0-9_]*|[A-Z][A-Za-z0-9_]*)(?:\.[A-Z][A-Za-z0-9_]*)*")
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_.?!:]")


def target_at(line: str, column: int) -> Target | None:
    """What `Mod.fun`, `Mod` or `fun` the cursor at `column` (code points) is on, if any."""
    if not line or column < 0 or column > len(line):
        return None
    start = column
    while start > 0 and _TOKEN_CHARS.match(line[start - 1]):
        start -= 1
    end = column
    while end < len(line) and _TOKEN_CHARS.match(line[end]):
        end += 1
    token = line[start:end]
    # Strip what cannot start a name (leading dots or a keyword-style trailing colon `key:`).
    lead = len(token) - len(token.lstrip("."))
    token, start = token[lead:], start + lead
    if token.endswith(":") and not token.startswith(":"):
        return None  # a keyword key (`name: value`), not a call
    if not token or start > column or (start == end):
        return None
    parts = token.split(".")
    if any(not p for p in parts):
        return None
    if start > 0 and line[start - 1] == "@":
        return None  # a module attribute: @doc, @spec, @moduledoc
    # Which part is the cursor on? Hovering `Enum` in `Enum.map` means the module.
    offset = start
    for i, part in enumerate(parts):
        if offset <= column <= offset + len(part):
            upto = parts[: i + 1]
            break
        offset += len(part) + 1
    else:
        upto = parts
    last = upto[-1]
    span_end = start + len(".".join(upto))
    if re.fullmatch(_FUN, last):
        module = ".".join(upto[:-1]) or None
        if module is not None and not _MODULE_EXPR.fullmatch(module):
            return None
        return Target(module, last, start, span_end)
    module = ".".join(upto)
    return Target(module, None, start, span_end) if _MODULE_EXPR.fullmatch(module) else None


def resolve_module(written: str, current: ModuleDef | None) -> str:
    """The full module name of `written` inside `current`: aliases and `__MODULE__` expanded."""
    if current is None:
        return written
    head, _, rest = written.partition(".")
    if head == "__MODULE__":
        return current.name + (f".{rest}" if rest else "")
    if head in current.aliases:
        return current.aliases[head] + (f".{rest}" if rest else "")
    return written
