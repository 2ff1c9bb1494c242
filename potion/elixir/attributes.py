"""Which lines above a `def` belong to it: its `@doc`, `@spec`, `@impl`, `@deprecated` ... block.

One rule for the chat's snippets (`/explain`, `/doc`), the code actions (where a written `@doc` goes, what
the model sees of a function) and the corpus's instruction samples. Plain text, no parse: it runs on the
lines the caller already has, and a file with syntax errors still gets an answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Attributes of the module, not of the function below them: a block never extends over these.
MODULE_ATTRIBUTES = frozenset(
    {
        "moduledoc",
        "behaviour",
        "type",
        "typep",
        "opaque",
        "typedoc",
        "callback",
        "macrocallback",
        "optional_callbacks",
        "derive",
        "enforce_keys",
        "before_compile",
        "after_compile",
        "on_definition",
        "external_resource",
        "compile",
        "vsn",
    }
)

_ATTRIBUTE = re.compile(r"@([a-z_]\w*)")
_HEREDOC_OPEN = re.compile(r'@([a-z_]\w*)\s+(?:~[a-zA-Z])?("""|\'\'\')\s*$')


def _function_attribute(line: str) -> bool:
    match = _ATTRIBUTE.match(line.strip())
    return match is not None and match.group(1) not in MODULE_ATTRIBUTES


def attribute_block_start(lines: Sequence[str], line: int) -> int:
    """The 0-based first line of the function attributes written right above `line` (a `def`'s first
    line), or `line` itself when there are none.

    A heredoc `@doc \"\"\"` counts whole; a blank line, a comment, code or a module attribute
    (`@moduledoc`, `@type`, `@behaviour` ...) ends the block.
    """
    start = line
    while start > 0:
        above = lines[start - 1].strip()
        if _function_attribute(above):
            start -= 1
            continue
        if above in ('"""', "'''"):  # the end of a heredoc: take it if a function attribute opened it
            opening = _heredoc_opening(lines, start - 2)
            if opening is None:
                return start
            start = opening
            continue
        return start
    return start


def _heredoc_opening(lines: Sequence[str], last: int) -> int | None:
    """The line of `@doc \"\"\"` (a function attribute) opening the heredoc whose body ends at `last`."""
    for number in range(last, -1, -1):
        text = lines[number].strip()
        if text in ('"""', "'''"):
            return None  # the closing quotes of another string: not a heredoc attribute
        match = _HEREDOC_OPEN.match(text)
        if match is not None:
            return None if match.group(1) in MODULE_ATTRIBUTES else number
    return None
