"""Re-analysis after an edit that stays inside one function body: only what the edit touched.

Analysis never walks into `def` bodies (see `potion.elixir.analysis`), so an edit inside a body changes
nothing the analysis reports except positions: the clause holding the edit ends later or earlier, and
everything after it moves. `reanalyze` checks on the re-parsed tree that the edit is such a one and
returns the previous analysis with those positions shifted; for any other edit (a `def` head, an
attribute, `end`, code that does not parse) it returns None and the caller analyses the whole tree.
A typing user is inside a body almost always, so a keystroke costs the incremental parse plus a walk
over the modules' positions instead of a full analysis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from tree_sitter import Node, Tree

from potion.elixir.model import DEF_KINDS, Clause, FunctionDef, ModuleDef, SourceAnalysis
from potion.elixir.positions import LineIndex

T = TypeVar("T")


@dataclass(frozen=True)
class Edit:
    """One replacement, in bytes: `old[start:old_end]` became `new[start:new_end]`."""

    start: int
    old_end: int
    new_end: int
    lines_delta: int  # newlines inserted minus newlines removed


def _def_body(node: Node | None, data: bytes) -> Node | None:
    """The `def ... do ... end` call whose do-block holds `node`, or None."""
    while node is not None:
        if node.type == "do_block":
            call = node.parent
            target = call.child_by_field_name("target") if call is not None and call.type == "call" else None
            if target is not None and target.type == "identifier":
                if data[target.start_byte : target.end_byte].decode("utf-8", "replace") in DEF_KINDS:
                    return call
        node = node.parent
    return None


def _inside_body(call: Node, edit: Edit) -> bool:
    """The edit lies between the `do` and the `end` of the call's do-block (its head is untouched)."""
    block = next((c for c in call.children if c.type == "do_block"), None)
    if block is None or block.child_count < 2:
        return False
    do, end = block.children[0], block.children[-1]
    return (
        do.type == "do" and end.type == "end" and do.end_byte < edit.start and edit.new_end < end.start_byte
    )


def reanalyze(
    old: SourceAnalysis, old_tree: Tree, tree: Tree, data: bytes, edit: Edit
) -> SourceAnalysis | None:
    """The analysis of `tree` (`old_tree` edited and re-parsed into `data`) derived from `old`, or None
    when the edit is not confined to one function body of a file that parses cleanly."""
    root = tree.root_node
    if old.errors or root.has_error:
        return None  # recovery from syntax errors walks bodies: analyse everything
    call = _def_body(root.descendant_for_byte_range(edit.start, edit.new_end), data)
    if call is None or not _inside_body(call, edit):
        return None
    delta = edit.new_end - edit.old_end
    clause = _clause_at(old, call.start_byte)
    if clause is None or clause.end_byte + delta != call.end_byte:
        return None
    for changed in old_tree.changed_ranges(tree):  # tree-sitter's own word on what moved
        if changed.start_byte < call.start_byte or changed.end_byte > call.end_byte:
            return None
    shift = _Shift(edit.old_end, delta, edit.lines_delta)
    modules = [shift.module(m) for m in old.modules]
    return SourceAnalysis(modules=modules, errors=[], lines=LineIndex(data), path=old.path, tree=tree)


def _clause_at(analysis: SourceAnalysis, start_byte: int) -> Clause | None:
    for module in analysis.modules:
        if not module.start_byte <= start_byte < module.end_byte:
            continue
        for fn in module.functions:
            for clause in fn.clauses:
                if clause.start_byte == start_byte:
                    return clause
    return None


@dataclass(frozen=True)
class _Shift:
    """Moves what lies after the edit (`at`: its old end) by `delta` bytes and `lines` lines; what
    holds the edit ends that much later. Unmoved objects are shared, moved ones copied: a reader of
    the previous analysis on another thread never sees it change."""

    at: int
    delta: int
    lines: int

    # Shallow copies with their positions set (`dataclasses.replace` and `copy.copy` cost several
    # times more: on a 2,000-line file that was most of a keystroke's re-analysis).

    def module(self, mod: ModuleDef) -> ModuleDef:
        if mod.end_byte < self.at:
            return mod
        return self._moved(mod, functions=[self.function(fn) for fn in mod.functions])

    def function(self, fn: FunctionDef) -> FunctionDef:
        if fn.clauses[-1].end_byte < self.at:
            return fn
        return _copy(fn, clauses=[self.clause(c) for c in fn.clauses])

    def clause(self, clause: Clause) -> Clause:
        return clause if clause.end_byte < self.at else self._moved(clause)

    def _moved(self, span: T, **fields: object) -> T:
        """A copy of a module or clause (both have line, end_line, start_byte, end_byte) moved."""
        moved = _copy(span, **fields)
        if span.start_byte >= self.at:
            moved.line += self.lines
            moved.start_byte += self.delta
        moved.end_line += self.lines
        moved.end_byte += self.delta
        return moved


def _copy(obj: T, **fields: object) -> T:
    moved = object.__new__(type(obj))
    moved.__dict__.update(obj.__dict__, **fields)
    return moved
