"""Elixir source understanding on tree-sitter: modules, functions, docs, specs, scope at a cursor.

analysis = analyze(text)                  # never raises; syntax errors in analysis.errors
scope = scope_at(analysis, line, character, encoding="utf-16")
doc = Document(text); doc.edit(...)       # incremental re-parse for the language server
"""

from potion.elixir.analysis import analyze, is_balanced
from potion.elixir.attributes import attribute_block_start
from potion.elixir.document import Document
from potion.elixir.model import (
    Clause,
    ErrorSpan,
    FunctionDef,
    ModuleDef,
    Scope,
    SourceAnalysis,
)
from potion.elixir.positions import LineIndex
from potion.elixir.scope import scope_at

__all__ = [
    "Clause",
    "Document",
    "ErrorSpan",
    "FunctionDef",
    "LineIndex",
    "ModuleDef",
    "Scope",
    "SourceAnalysis",
    "analyze",
    "attribute_block_start",
    "is_balanced",
    "scope_at",
]
