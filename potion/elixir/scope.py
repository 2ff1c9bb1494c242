"""The scope around a cursor: innermost module and function clause, from LSP-style positions."""

from __future__ import annotations

from potion.elixir.analysis import analyze
from potion.elixir.model import Scope, SourceAnalysis


def scope_at(
    analysis_or_source: SourceAnalysis | str | bytes, line: int, character: int, *, encoding: str = "utf-16"
) -> Scope:
    """Scope at a 0-based `line`/`character`, counted in `encoding` ("utf-16", "utf-8" bytes or
    "utf-32" code points). Positions past a line's end or the document's end clamp to it."""
    analysis = analysis_or_source
    if not isinstance(analysis, SourceAnalysis):
        analysis = analyze(analysis)
    offset = analysis.lines.offset(line, character, encoding)
    return scope_at_offset(analysis, offset)


def _contains(start: int, end: int, offset: int, size: int) -> bool:
    # Half-open, so a cursor right after `end` is outside; a span running to the end of the buffer
    # (recovered from a missing `end`) still holds a cursor at the very end.
    return start <= offset < end or (offset == end == size)


def scope_at_offset(analysis: SourceAnalysis, offset: int) -> Scope:
    size = len(analysis.lines.data)
    chain = [m for m in analysis.modules if _contains(m.start_byte, m.end_byte, offset, size)]
    chain.sort(key=lambda m: (m.start_byte, -m.end_byte))
    scope = Scope(modules=chain)
    if not chain:
        return scope
    scope.module = chain[-1]
    best = None
    for fn in scope.module.functions:
        for clause in fn.clauses:
            if _contains(clause.start_byte, clause.end_byte, offset, size):
                if best is None or clause.start_byte >= best[1].start_byte:
                    best = (fn, clause)
    if best is not None:
        scope.function, scope.clause = best
    return scope
