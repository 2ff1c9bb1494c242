"""Plain functions behind the code actions: where callbacks, `@impl` and docs go, and how the model's
answers are cleaned into code. No server here; lsp.features.code_actions turns these into edits."""

from __future__ import annotations

import re
from pathlib import Path

from lsp.callbacks import CALLBACKS, Known, behaviours_of, callback_code, missing_callbacks
from potion.elixir import analyze, is_balanced
from potion.elixir.model import FunctionDef, ModuleDef


def module_name_for_path(path: str) -> str | None:
    """`.../lib/my_app/worker.ex` -> `MyApp.Worker` (Mix's convention); None if not an `.ex` file."""
    p = Path(path)
    if p.suffix != ".ex":
        return None
    parts = list(p.with_suffix("").parts)
    if "lib" in parts:
        parts = parts[len(parts) - parts[::-1].index("lib") :]
    else:
        parts = parts[-1:]
    segments = ["".join(w[:1].upper() + w[1:] for w in part.split("_") if w) for part in parts]
    name = ".".join(segments)
    return name if re.fullmatch(r"[A-Z]\w*(\.[A-Z]\w*)*", name) else None


def indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def callbacks_insertion(
    lines: list[str], module: ModuleDef, *, required_only: bool, known: Known = CALLBACKS
) -> tuple[int, str] | None:
    """(line, text) inserting the module's missing callbacks before its closing `end`, or None."""
    missing = missing_callbacks(module, required_only=required_only, known=known)
    end = module.end_line
    if not missing or end >= len(lines) or lines[end].strip() != "end":
        return None  # a module without a clean closing `end` line (syntax error, one-liner): leave it
    indent = indent_of(lines[module.line]) + "  "
    text = "".join("\n" + callback_code(cb, indent) for cb in missing)
    # Keep one blank line between the last definition and the new callbacks, not two.
    if end > 0 and not lines[end - 1].strip():
        text = text[1:]
    return end, text


def callbacks_without_impl(module: ModuleDef, known: Known = CALLBACKS) -> list[FunctionDef]:
    """Functions that implement a callback of the module's behaviours but carry no `@impl`."""
    keys = {(cb.name, cb.arity) for b in behaviours_of(module, known) for cb in known[b]}
    return [
        fn
        for fn in module.functions
        if fn.impl is None and fn.kind == "def" and any((fn.name, a) in keys for a in fn.arities)
    ]


def impl_insertions(lines: list[str], functions: list[FunctionDef]) -> list[tuple[int, str]]:
    """`@impl true` lines above each function's first clause, indented like the `def`."""
    out = []
    for fn in functions:
        if fn.line < len(lines):
            out.append((fn.line, f"{indent_of(lines[fn.line])}@impl true\n"))
    return out


def function_at(module: ModuleDef, line: int, scoped: FunctionDef | None) -> FunctionDef | None:
    """The function whose clause or attribute block covers `line`."""
    if scoped is not None:
        return scoped
    for fn in module.functions:
        for clause in fn.clauses:
            if clause.line <= line <= clause.end_line:
                return fn
    return None


def doc_block(text: str, indent: str) -> str:
    """`@doc \"\"\"` heredoc with the model's text: fences and an echoed `@doc` stripped, indented."""
    text = text.strip()
    text = re.sub(r"^```[a-z]*\n|\n?```$", "", text).strip()
    match = re.match(r'^@doc\s+"""\n?(.*?)\n?\s*"""\s*$', text, re.S)
    if match:
        text = match.group(1)
    else:
        match = re.match(r'^@doc\s+"(.*)"\s*$', text, re.S)
        if match:
            text = match.group(1)
    text = _dedent(text).strip().replace('"""', '\\"\\"\\"')
    if not text:
        return ""
    body = "".join(f"{indent}{line}\n" if line.strip() else "\n" for line in text.split("\n"))
    return f'{indent}@doc """\n{body}{indent}"""\n'


def implementation_code(text: str, fn: FunctionDef, indent: str) -> str | None:
    """The model's clauses of `fn`, re-indented; None if its answer holds no balanced `def` of that name.

    Small models wrap the clauses in prose, echo the `@doc`/`@spec`, or answer the whole module: the
    answer is parsed (inside a stand-in module when it has none) and only the clauses are kept.
    """
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    candidates = [*blocks, text] if blocks else [text]
    for candidate in candidates:
        code = _dedent(candidate.strip("\n"))
        wrapped = "defmodule" not in code
        source = f"defmodule PotionAnswer do\n{code}\nend\n" if wrapped else code
        lines = source.split("\n")
        for module in analyze(source).modules:
            found = module.function(fn.name)
            if found is None or found.kind not in ("def", "defp"):
                continue
            body = _dedent("\n".join(lines[found.line : found.end_line + 1])).rstrip()
            if is_balanced(body) and re.match(rf"(def|defp)\s+{re.escape(fn.name)}\b", body):
                return "".join(f"{indent}{ln}\n" if ln.strip() else "\n" for ln in body.split("\n"))
    return None


def _dedent(text: str) -> str:
    lines = text.split("\n")
    widths = [len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()]
    cut = min(widths, default=0)
    return "\n".join(ln[cut:] for ln in lines)
