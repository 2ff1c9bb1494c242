"""What `potion.elixir.analyze` finds in a source file: modules, functions, errors, and a cursor's scope.

Lines are 0-based (like LSP and tree-sitter); `column`s of error spans are byte columns, convert them with
`SourceAnalysis.lines.column(...)` for a client's encoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from potion.elixir.positions import LineIndex

PUBLIC_KINDS = ("def", "defmacro", "defguard", "defdelegate")
PRIVATE_KINDS = ("defp", "defmacrop", "defguardp")
DEF_KINDS = PUBLIC_KINDS + PRIVATE_KINDS
MODULE_KINDS = ("defmodule", "defprotocol", "defimpl")


@dataclass
class ErrorSpan:
    """A syntax error tree-sitter recovered from: an ERROR node or a MISSING token (e.g. `end`)."""

    line: int
    column: int
    end_line: int
    end_column: int
    message: str
    missing: bool = False


@dataclass
class Clause:
    """One `def` clause (or bodiless head) of a function."""

    line: int
    end_line: int
    start_byte: int
    end_byte: int
    params: list[str]
    defaults: int = 0
    guard: str | None = None

    @property
    def arity(self) -> int:
        return len(self.params)


@dataclass
class FunctionDef:
    """All clauses of one `name/arity` (with default arguments: a range of arities) in a module."""

    name: str
    kind: str
    module: str
    arities: range
    clauses: list[Clause] = field(default_factory=list)
    doc: str | None = None
    doc_hidden: bool = False
    spec: str | None = None
    impl: bool | str | None = None
    deprecated: str | None = None

    @property
    def line(self) -> int:
        return self.clauses[0].line

    @property
    def end_line(self) -> int:
        return self.clauses[-1].end_line

    @property
    def params(self) -> list[str]:
        return self.clauses[0].params

    @property
    def arity(self) -> int:
        return self.arities.stop - 1

    @property
    def public(self) -> bool:
        return self.kind in PUBLIC_KINDS

    @property
    def macro(self) -> bool:
        return self.kind in ("defmacro", "defmacrop", "defguard", "defguardp")

    def signature(self) -> str:
        """`name(a, b \\\\ default)` from the clause that declares the defaults (or the first)."""
        clause = max(self.clauses, key=lambda c: c.defaults)
        return f"{self.name}({', '.join(clause.params)})"


@dataclass
class ModuleDef:
    """A `defmodule`/`defprotocol`/`defimpl`, its name fully resolved (`Outer.Inner`)."""

    name: str
    kind: str
    line: int
    end_line: int
    start_byte: int
    end_byte: int
    parent: str | None = None
    moduledoc: str | None = None
    moduledoc_hidden: bool = False
    behaviours: list[str] = field(default_factory=list)
    uses: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    imports: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)
    functions: list[FunctionDef] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    specs: dict[tuple[str, int], list[str]] = field(default_factory=dict)

    def function(self, name: str, arity: int | None = None) -> FunctionDef | None:
        for fn in self.functions:
            if fn.name == name and (arity is None or arity in fn.arities):
                return fn
        return None

    def public_arities(self) -> set[tuple[str, int]]:
        """Every public `name/arity` (defaults expanded), as `elixir` itself would list them."""
        return {(f.name, a) for f in self.functions if f.public for a in f.arities}


@dataclass
class Scope:
    """Where a cursor is: the innermost module and the function clause around it (None outside)."""

    module: ModuleDef | None = None
    function: FunctionDef | None = None
    clause: Clause | None = None
    modules: list[ModuleDef] = field(default_factory=list)  # outermost first

    @property
    def module_name(self) -> str | None:
        return self.module.name if self.module else None


@dataclass
class SourceAnalysis:
    """The result of `analyze`: never raised from, partial when the source has syntax errors."""

    modules: list[ModuleDef]
    errors: list[ErrorSpan]
    lines: LineIndex
    path: str | None = None
    tree: object | None = None  # tree_sitter.Tree, kept for incremental re-parsing and scope lookups

    @property
    def has_errors(self) -> bool:
        return bool(self.errors)

    def module(self, name: str) -> ModuleDef | None:
        for mod in self.modules:
            if mod.name == name:
                return mod
        return None

    def public_arities(self) -> dict[str, set[tuple[str, int]]]:
        """Module name -> public `name/arity` set (modules with the same name merged)."""
        out: dict[str, set[tuple[str, int]]] = {}
        for mod in self.modules:
            out.setdefault(mod.name, set()).update(mod.public_arities())
        return out
