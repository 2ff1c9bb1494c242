"""`textDocument/hover`: `@spec` and `@doc` of the function or module under the cursor.

Looks the name up in the workspace index (open buffers, workspace, `deps/`, Elixir's stdlib docs),
resolving aliases and `__MODULE__` in the cursor's module. A bare `fun` is a local function of that
module, else one it imports, else `Kernel`'s.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from lsprotocol import types

from lsp.elixir_cursor import Target, resolve_module, target_at
from lsp.server import document_split
from lsp.workspace_index import FunctionInfo, ModuleInfo, WorkspaceIndex, function_info
from potion.elixir import scope_at

if TYPE_CHECKING:
    from pygls.workspace import TextDocument

    from lsp.server import PotionServer
    from potion.elixir.model import ModuleDef

log = logging.getLogger(__name__)

_SOURCE_LABEL = {"open": "", "workspace": "", "deps": "deps", "stdlib": "Elixir"}


def register(server: PotionServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_HOVER)
    async def hover(ls: PotionServer, params: types.HoverParams) -> types.Hover | None:
        if not ls.config.hover:
            return None
        document = ls.document(params.text_document.uri)
        if document is None:
            return None
        try:
            # Off the event loop: re-parsing a big buffer after an edit must not delay keystrokes.
            return await asyncio.to_thread(hover_at, ls, document, params.position)
        except Exception:  # a lookup bug must not turn into an error popup on every mouse move
            log.exception("hover failed at %s:%s", params.text_document.uri, params.position)
            return None


def hover_at(server: PotionServer, document: TextDocument, position: types.Position) -> types.Hover | None:
    prefix, suffix = document_split(document, position)
    before = prefix[prefix.rfind("\n") + 1 :]
    line = before + suffix.split("\n", 1)[0]
    target = target_at(line, len(before))
    if target is None:
        return None
    analysis = server.workspace_index.analysis(document.uri)
    module = None
    if analysis is not None:
        module = scope_at(
            analysis, position.line, position.character, encoding=server.position_encoding()
        ).module
    markdown = hover_markdown(
        server.workspace_index, target, module, arity=call_arity(line, target.start, target.end)
    )
    if markdown is None:
        return None
    units = document.position_codec.client_num_units
    start = position.character - units(before[target.start :]) if target.start <= len(before) else 0
    end = start + units(line[target.start : target.end])
    rng = types.Range(
        start=types.Position(line=position.line, character=max(0, start)),
        end=types.Position(line=position.line, character=max(0, end)),
    )
    return types.Hover(
        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=markdown), range=rng
    )


def hover_markdown(
    index: WorkspaceIndex, target: Target, module: ModuleDef | None, *, arity: int | None = None
) -> str | None:
    """The hover text for `target` seen from inside `module` (None when nothing is known about it)."""
    if target.name is None:
        name = resolve_module(target.module or "", module)
        info = index.module(name)
        return module_markdown(info) if info is not None else None
    if target.module is not None:
        full = resolve_module(target.module, module)
        return functions_markdown(_pick(index.function(full, target.name), arity))
    # A local call: own module first (private functions included), then imports, then Kernel.
    candidates: list[str] = []
    if module is not None:
        candidates.append(module.name)
        candidates += [resolve_module(m, module) for m in module.imports]
    candidates.append("Kernel")
    for name in candidates:
        found = _pick(index.function(name, target.name), arity)
        if not found and module is not None and name == module.name:
            found = _pick(_own_functions(module, target.name), arity)
        if found:
            return functions_markdown(found)
    return None


def _own_functions(module: ModuleDef, name: str) -> list[FunctionInfo]:
    """The module's functions straight from the buffer's analysis (the index may lag one edit)."""
    return [function_info(fn, "open", None) for fn in module.functions if fn.name == name]


def _pick(functions: list[FunctionInfo], arity: int | None) -> list[FunctionInfo]:
    """The arity the call uses when we could count it and it exists, else every arity."""
    if arity is None:
        return functions
    exact = [f for f in functions if arity in f.arities]
    return exact or functions


def functions_markdown(functions: list[FunctionInfo]) -> str | None:
    if not functions:
        return None
    first = functions[0]
    specs = [s for f in functions if f.spec for s in f.spec.split("\n")]
    heads = [f"{first.module}.{f.signature}" for f in functions]
    code = "\n".join([*dict.fromkeys(heads), *(f"@spec {s}" for s in dict.fromkeys(specs))])
    parts = [f"```elixir\n{code}\n```"]
    where = _SOURCE_LABEL.get(first.source, "")
    kinds = {f.kind for f in functions}
    notes = []
    if kinds & {"defmacro", "defmacrop"}:
        notes.append("macro")
    if kinds & {"defp", "defmacrop", "defguardp"}:
        notes.append("private")
    if where:
        notes.append(where)
    if notes:
        parts.append(f"*{' · '.join(notes)}*")
    docs = [f.doc for f in functions if f.doc]
    if docs:
        parts.append("\n\n---\n\n".join(dict.fromkeys(docs)))
    return "\n\n".join(parts)


def module_markdown(info: ModuleInfo) -> str:
    parts = [f"```elixir\n{info.name}\n```"]
    if info.source == "stdlib":
        parts.append("*Elixir*")
    elif info.source == "deps":
        parts.append("*deps*")
    if info.moduledoc:
        parts.append(info.moduledoc)
    return "\n\n".join(parts)


def call_arity(line: str, name_start: int, name_end: int) -> int | None:
    """Number of arguments of the call named by `line[name_start:name_end]`: `f(a, b)` -> 2,
    `x |> f(a)` -> 2, `f()` -> 0. None when there is no argument list on this line or it does not close."""
    if name_end >= len(line) or line[name_end] != "(":
        return None
    depth = 0
    count = 0
    seen_arg = False
    quote = None
    for ch in line[name_end:]:
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
            seen_arg = True
        elif ch in "([{":
            depth += 1
            if depth > 1:
                seen_arg = True
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                args = count + (1 if seen_arg else 0)
                # `x |> Mod.f(a)`: the piped value is the first argument.
                return args + (1 if line[:name_start].rstrip().endswith("|>") else 0)
        elif ch == "," and depth == 1:
            count += 1
        elif not ch.isspace() and depth >= 1:
            seen_arg = True
    return None
