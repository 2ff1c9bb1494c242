"""Turn raw model output into a suggestion an editor can show.

The model continues the text at the cursor but does not know when to stop: it repeats the code after the
cursor, closes blocks that are already closed, or writes the next three functions. These functions cut it
back to what a user wants to accept: one line when the cursor is mid-line, otherwise one block that ends
where its `do`/`end` and brackets are balanced (counted on tree-sitter tokens, so `"do"` in a string or
`:end` as an atom do not count), indented like the cursor.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

_OPENERS = {"do", "fn", "(", "[", "{", "<<"}
_CLOSERS = {"end", ")", "]", "}", ">>"}
_CLOSING_CHARS = set(")]}>\"' \t,;")


@dataclass(frozen=True)
class CursorContext:
    """The text around the cursor that post-processing needs."""

    line_prefix: str  # the cursor's line, before the cursor
    line_suffix: str  # the cursor's line, after the cursor
    next_lines: list[str] = field(default_factory=list)  # the lines after the cursor's line

    @property
    def mid_line(self) -> bool:
        """True when real code follows the cursor on its line (closing brackets alone do not count)."""
        return any(ch not in _CLOSING_CHARS for ch in self.line_suffix)

    @property
    def indent(self) -> str:
        """The indentation of the cursor's line."""
        stripped = self.line_prefix.lstrip(" \t")
        return self.line_prefix[: len(self.line_prefix) - len(stripped)]

    @property
    def at_indent(self) -> bool:
        """True when only whitespace precedes the cursor on its line."""
        return not self.line_prefix.strip()


def cursor_context(prefix: str, suffix: str, *, next_lines: int = 8) -> CursorContext:
    """Build the context from the document text before and after the cursor."""
    line_start = prefix.rfind("\n") + 1
    line_end = suffix.find("\n")
    line_suffix = suffix if line_end < 0 else suffix[:line_end]
    following: list[str] = []
    if line_end >= 0:
        rest = suffix[line_end + 1 :]
        # Only look a few lines ahead: the suffix of a 5 MB file must not be split whole.
        following = rest[: 200 * next_lines].split("\n")[:next_lines]
    return CursorContext(prefix[line_start:], line_suffix.rstrip("\r"), [s.rstrip("\r") for s in following])


@functools.cache
def _parser():
    import tree_sitter
    import tree_sitter_elixir

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_elixir.language()))


def line_depths(text: str) -> list[int]:
    """The change of block depth each line of `text` makes: +1 per `do`/`fn`/open bracket, -1 per close.

    Tokens come from tree-sitter so strings, sigils' contents, comments and atoms are not counted. A stray
    `end` that error recovery parses as an identifier still closes.
    """
    lines = text.split("\n")
    deltas = [0] * len(lines)
    tree = _parser().parse(text.encode("utf-8", "replace"))  # a lone surrogate from a client must not raise
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.child_count:
            stack.extend(node.children)
            continue
        kind = node.type
        if kind == "identifier" and node.text == b"end":
            kind = "end"
        row = min(node.start_point[0], len(lines) - 1)
        if kind in _OPENERS:
            deltas[row] += 1
        elif kind in _CLOSERS:
            deltas[row] -= 1
    return deltas


def _width(s: str) -> int:
    return len(s) - len(s.lstrip(" \t"))


def match_indent(text: str, ctx: CursorContext) -> str:
    """Indent the suggestion like the cursor.

    When the cursor already sits at the indentation, the model's leading whitespace on the first line is
    extra; it is removed and later lines shift by the same amount so their relative indentation stays.
    """
    if not ctx.at_indent or not ctx.line_prefix:
        return text
    first, _, rest = text.partition("\n")
    lead = _width(first)
    if lead == 0:
        return text
    lines = [first[lead:]]
    if rest or "\n" in text:
        for line in rest.split("\n"):
            lines.append(line[lead:] if _width(line) >= lead else line.lstrip(" \t"))
    return "\n".join(lines)


def single_line(text: str, ctx: CursorContext) -> str:
    """Mid-line: keep the first line and drop what repeats the rest of the cursor's line."""
    line = text.split("\n", 1)[0].rstrip()
    rest = ctx.line_suffix.strip()
    if len(rest) >= 3 and (cut := line.find(rest)) >= 0:
        return line[:cut].rstrip()
    # The model often closes what the line already closes: "foo(a" + ")" written as "foo(a)" + ")".
    for k in range(len(rest), 0, -1):
        if line.endswith(rest[:k]):
            return line[: len(line) - k].rstrip() if k < len(line) else ""
    return line


def block(text: str, ctx: CursorContext) -> str:
    """End of line or blank line: keep one balanced block, stop at dedent, a blank line or the suffix."""
    lines = text.split("\n")
    deltas = line_depths(text)
    base_indent = _width(ctx.line_prefix) if ctx.at_indent else _width(ctx.indent)
    next_line = next((s.rstrip() for s in ctx.next_lines if s.strip()), "")
    # Blocks the cursor's line opens ("def foo do|") are the suggestion's to close.
    depth = (0 if ctx.at_indent else max(0, sum(line_depths(ctx.line_prefix)))) + deltas[0]
    baseline = min(0, depth)
    opened = depth > baseline
    seen_code = bool(lines[0].strip())
    keep = len(lines)
    for i in range(1, len(lines)):
        line = lines[i].rstrip()
        stripped = line.strip()
        if not stripped:
            if depth <= baseline and (opened or seen_code):
                keep = i  # a blank line after a complete statement ends the suggestion
                break
            continue
        new_depth = depth + deltas[i]
        repeats = line == next_line or (len(stripped) >= 12 and stripped == next_line.strip())
        if repeats and new_depth <= baseline:
            keep = i  # the model started re-writing the code after the cursor
            break
        if depth <= baseline and _width(line) < base_indent:
            keep = i  # dedented out of the cursor's block
            break
        if new_depth < baseline:
            keep = i  # closes a block opened before the suggestion
            break
        depth = new_depth
        seen_code = True
        if depth > baseline:
            opened = True
        elif opened:
            keep = i + 1  # the block the suggestion opened is closed: stop after it
            break
    return "\n".join(lines[:keep])


def postprocess(text: str, ctx: CursorContext) -> str:
    """The suggestion to show for raw output `text`, or "" when nothing useful is left."""
    text = text.replace("\r\n", "\n")
    if not text.strip():
        return ""
    if ctx.mid_line:
        out = single_line(text, ctx)
    else:
        out = block(match_indent(text, ctx), ctx)
        out = "\n".join(line.rstrip() for line in out.split("\n")).rstrip()
        # Trailing brackets the line already has after the cursor would be doubled.
        rest = ctx.line_suffix.strip()
        if rest and "\n" not in out and out.endswith(rest):
            out = out[: len(out) - len(rest)].rstrip()
    return out if out.strip() else ""


def should_stop(text: str, ctx: CursorContext) -> bool:
    """True once more output cannot change the post-processed suggestion (saves generation time)."""
    if "\n" not in text:
        return False
    if ctx.mid_line:
        return bool(text.split("\n", 1)[0].strip())
    # A line is only final once the next one started; compare with the last line dropped.
    complete = text[: text.rfind("\n")]
    if not complete.strip():
        return False
    kept = block(match_indent(complete, ctx), ctx)
    return kept.count("\n") < match_indent(complete, ctx).count("\n")
