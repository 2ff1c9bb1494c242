"""An open document that re-parses incrementally after each edit (what the language server keeps).

An edit inside a function body is also re-analysed incrementally (`potion.elixir.incremental`): the
previous analysis with its positions moved. Any other edit is analysed from the re-parsed tree.
"""

from __future__ import annotations

from tree_sitter import Point

from potion.elixir.analysis import analyze_tree, parse, to_bytes
from potion.elixir.incremental import Edit, reanalyze
from potion.elixir.model import Scope, SourceAnalysis
from potion.elixir.positions import LineIndex
from potion.elixir.scope import scope_at


class Document:
    """Text + tree-sitter tree + analysis; `edit()` applies an LSP-style change and re-analyses."""

    def __init__(self, source: str | bytes = "", *, path: str | None = None, encoding: str = "utf-16"):
        self.path = path
        self.encoding = encoding
        self.data = to_bytes(source)
        self.tree = parse(self.data)
        self.analysis: SourceAnalysis = analyze_tree(self.tree, self.data, path=path)

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    def replace(self, source: str | bytes) -> SourceAnalysis:
        """Full-document sync: parse from scratch."""
        self.data = to_bytes(source)
        self.tree = parse(self.data)
        self.analysis = analyze_tree(self.tree, self.data, path=self.path)
        return self.analysis

    def edit(
        self,
        start_line: int,
        start_character: int,
        end_line: int,
        end_character: int,
        new_text: str,
        *,
        encoding: str | None = None,
    ) -> SourceAnalysis:
        """Replace the range (0-based, in `encoding` units) with `new_text`, re-parse re-using the old
        tree, and re-analyse what the edit touched. Out-of-range positions clamp to the document end."""
        enc = encoding or self.encoding
        lines: LineIndex = self.analysis.lines
        start = lines.offset(start_line, start_character, enc)
        end = max(start, lines.offset(end_line, end_character, enc))
        inserted = to_bytes(new_text)
        old = self.data
        new = old[:start] + inserted + old[end:]
        new_end = start + len(inserted)
        self.tree.edit(
            start_byte=start,
            old_end_byte=end,
            new_end_byte=new_end,
            start_point=_point(old, start),
            old_end_point=_point(old, end),
            new_end_point=_point(new, new_end),
        )
        old_tree = self.tree
        self.data = new
        self.tree = parse(new, old_tree)
        lines_delta = inserted.count(b"\n") - old.count(b"\n", start, end)
        change = Edit(start, end, new_end, lines_delta)
        analysis = reanalyze(self.analysis, old_tree, self.tree, new, change)
        self.analysis = analysis if analysis is not None else analyze_tree(self.tree, new, path=self.path)
        return self.analysis

    def scope_at(self, line: int, character: int, *, encoding: str | None = None) -> Scope:
        return scope_at(self.analysis, line, character, encoding=encoding or self.encoding)


def _point(data: bytes, offset: int) -> Point:
    """Tree-sitter point (row, byte column) of a byte offset."""
    row = data.count(b"\n", 0, offset)
    line_start = data.rfind(b"\n", 0, offset) + 1
    return Point(row, offset - line_start)
