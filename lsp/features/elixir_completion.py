"""Elixir completions that need no model: `Mod.` functions, module names, local functions, callbacks.

`completion_items(server, document, position)` is called by the single `textDocument/completion`
handler (lsp.features.completion), which merges these items with the AI suggestion. Nothing is
registered here. Items carry a `textEdit` over the word being typed, so every client replaces exactly
that word; snippets with argument placeholders go only to clients that support them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lsprotocol import types

from lsp.callbacks import CALLBACKS, Known, callback_code, missing_callbacks, split_args
from lsp.elixir_cursor import def_start, resolve_module, typed_before
from lsp.server import document_split
from lsp.workspace_index import FunctionInfo, WorkspaceIndex
from potion.elixir import scope_at
from potion.elixir.model import ModuleDef

if TYPE_CHECKING:
    from pygls.workspace import TextDocument

    from lsp.server import PotionServer

log = logging.getLogger(__name__)

MAX_ITEMS = 200
_KINDS = {
    "def": types.CompletionItemKind.Function,
    "defp": types.CompletionItemKind.Function,
    "defdelegate": types.CompletionItemKind.Function,
    "defmacro": types.CompletionItemKind.Method,  # editors show macros apart from functions this way
    "defmacrop": types.CompletionItemKind.Method,
    "defguard": types.CompletionItemKind.Method,
    "defguardp": types.CompletionItemKind.Method,
}


def completion_items(
    server: PotionServer, document: TextDocument, position: types.Position
) -> list[types.CompletionItem]:
    """Completion items for the cursor; never raises (a broken index must not kill AI completion)."""
    try:
        return _items(server, document, position)
    except Exception:
        log.exception("Elixir completion failed at %s:%s", document.uri, position)
        return []


def _items(
    server: PotionServer, document: TextDocument, position: types.Position
) -> list[types.CompletionItem]:
    prefix, suffix = document_split(document, position)
    before = prefix[prefix.rfind("\n") + 1 :]
    after = suffix.split("\n", 1)[0]
    index = server.workspace_index
    analysis = index.analysis(document.uri, stale_ok=True)
    if analysis is None:
        return []
    scope = scope_at(analysis, position.line, position.character, encoding=server.position_encoding())
    snippets = _snippet_support(server)
    typed = typed_before(before)

    def edit_range(prefix: str) -> types.Range:
        width = document.position_codec.client_num_units(prefix)
        start = types.Position(line=position.line, character=max(0, position.character - width))
        return types.Range(start=start, end=position)

    if typed.kind == "call" and typed.module:
        module = resolve_module(typed.module, scope.module)
        items = [
            _function_item(fn, edit_range(typed.prefix), snippets)
            for fn in index.functions(module)
            if fn.name.startswith(typed.prefix)
        ]
        # `MyApp.` also continues into nested modules (`MyApp.Worker`).
        items += [
            _module_item(name, module, edit_range(typed.prefix), index)
            for name in index.module_names(f"{module}.{typed.prefix}")
            if "." not in name[len(module) + 1 :]
        ]
        return items[:MAX_ITEMS]

    items: list[types.CompletionItem] = []
    if scope.module is not None and scope.function is None:
        start = def_start(before, after)
        if start is not None:
            indent, word = start
            known = index.known_callbacks(scope.module)
            items += callback_items(scope.module, indent, word, edit_range(word), known)
    if typed.kind == "module":
        parent, _, partial = typed.prefix.rpartition(".")
        full_parent = resolve_module(parent, scope.module) if parent else ""
        lookup = f"{full_parent}.{partial}" if parent else partial
        for name in index.module_names(lookup):
            rest = name[len(full_parent) + 1 :] if parent else name
            if "." in rest:
                continue  # one level at a time, like the file tree
            items.append(_module_item(name, full_parent or None, edit_range(partial), index))
        if scope.module is not None and not parent:
            # Aliases in scope complete to their short name.
            for short, full in scope.module.aliases.items():
                if short.startswith(partial) and short not in {i.label for i in items}:
                    items.append(_alias_item(short, full, edit_range(partial)))
    elif typed.kind == "attribute" and scope.module is not None:
        items += attribute_items(
            typed.prefix, edit_range(typed.prefix), in_function=scope.function is not None
        )
    elif typed.kind == "local" and scope.module is not None:
        items += local_items(index, scope.module, typed.prefix, edit_range(typed.prefix), snippets)
    return items[:MAX_ITEMS]


def local_items(
    index: WorkspaceIndex, module: ModuleDef, prefix: str, edit_range: types.Range, snippets: bool
) -> list[types.CompletionItem]:
    """Functions callable without a module: the module's own (private too), imports, then Kernel."""
    items: dict[str, types.CompletionItem] = {}
    own = [
        FunctionInfo(
            module=module.name,
            name=fn.name,
            arities=tuple(fn.arities),
            kind=fn.kind,
            signature=fn.signature(),
            spec=fn.spec,
            doc=fn.doc,
            source="open",
            line=fn.line,
        )
        for fn in module.functions
        if fn.name.startswith(prefix)  # before building anything: a module may have thousands
    ]
    sources = [(own, "0")]
    for imported in module.imports:
        sources.append((index.functions(resolve_module(imported, module)), "1"))
    sources.append((index.functions("Kernel"), "2"))
    for functions, rank in sources:
        for fn in functions:
            if not fn.name.startswith(prefix) or fn.label in items:
                continue
            item = _function_item(fn, edit_range, snippets)
            item.sort_text = f"{rank}{fn.name}"
            items[fn.label] = item
    return list(items.values())


# Module attributes Elixir gives a meaning to, with what they are for.
ATTRIBUTES = {
    "doc": "Documentation of the next function",
    "moduledoc": "Documentation of the module",
    "spec": "Typespec of the next function",
    "impl": "Marks the next function as a behaviour callback (`@impl true`)",
    "behaviour": "Declares that the module implements a behaviour",
    "callback": "Declares a callback of this module's behaviour",
    "macrocallback": "Declares a macro callback of this module's behaviour",
    "optional_callbacks": "Callbacks implementations may leave out",
    "type": "A public type",
    "typep": "A private type",
    "opaque": "A type whose structure is private",
    "typedoc": "Documentation of the next type",
    "derive": "Protocols to derive for the module's struct",
    "enforce_keys": "Struct keys that must be given",
    "deprecated": "Marks the next function as deprecated",
    "since": "The version the next function appeared in",
    "dialyzer": "Dialyzer options",
    "compile": "Compiler options",
    "external_resource": "A file the module is compiled from",
    "before_compile": "A module whose __before_compile__/1 runs first",
    "after_compile": "A module whose __after_compile__/2 runs after",
    "on_load": "A function run when the module is loaded",
    "vsn": "The module's version",
}


def attribute_items(prefix: str, edit_range: types.Range, *, in_function: bool) -> list[types.CompletionItem]:
    """Elixir's module attributes starting with `prefix`; none inside a `def`, where `@x` reads the
    module's own attributes rather than declaring one."""
    if in_function:
        return []
    return [
        types.CompletionItem(
            label=f"@{name}",
            kind=types.CompletionItemKind.Keyword,
            detail=detail,
            filter_text=name,
            sort_text=name,
            text_edit=types.TextEdit(range=edit_range, new_text=name),
        )
        for name, detail in ATTRIBUTES.items()
        if name.startswith(prefix)
    ]


def callback_items(
    module: ModuleDef, indent: str, word: str, edit_range: types.Range, known: Known = CALLBACKS
) -> list[types.CompletionItem]:
    """Whole `@impl true` + `def` clauses for the behaviour callbacks `module` lacks.

    `word` is what was typed on the line (`han`, `def`, `def handle_`); the edit replaces it, the
    line's indentation stays and the clause's other lines get it too."""
    typed_def = word.startswith("def") or "def".startswith(word)
    name_part = word.split()[-1] if word.startswith("def ") else word
    out = []
    for cb in missing_callbacks(module, known=known):
        if word and not (cb.name.startswith(name_part) or (typed_def and " " not in word)):
            continue
        code = callback_code(cb, indent).rstrip("\n")[len(indent) :]
        out.append(
            types.CompletionItem(
                label=f"def {cb.name}/{cb.arity}",
                kind=types.CompletionItemKind.Snippet,
                detail=f"{cb.behaviour} callback{' (required)' if cb.required else ''}",
                label_details=types.CompletionItemLabelDetails(description=f"{cb.behaviour} callback"),
                documentation=types.MarkupContent(
                    kind=types.MarkupKind.Markdown, value=f"```elixir\n{code}\n```"
                ),
                filter_text=f"def {cb.name}" if typed_def else cb.name,
                sort_text=f"{0 if cb.required else 1}{cb.name}",
                insert_text_format=types.InsertTextFormat.PlainText,
                text_edit=types.TextEdit(range=edit_range, new_text=code),
            )
        )
    return out


def _function_item(fn: FunctionInfo, edit_range: types.Range, snippets: bool) -> types.CompletionItem:
    params = _params(fn.signature)
    if snippets and params is not None:
        placeholders = ", ".join(f"${{{i}:{_snippet_escape(p)}}}" for i, p in enumerate(params, 1))
        new_text, fmt = f"{fn.name}({placeholders})", types.InsertTextFormat.Snippet
    else:
        new_text, fmt = fn.name, types.InsertTextFormat.PlainText
    docs = []
    if fn.spec:
        docs.append("```elixir\n" + "\n".join(f"@spec {s}" for s in fn.spec.split("\n")) + "\n```")
    if fn.doc:
        docs.append(fn.doc)
    return types.CompletionItem(
        label=fn.label,
        kind=_KINDS.get(fn.kind, types.CompletionItemKind.Function),
        detail=f"{fn.module}.{fn.signature}" if fn.module else fn.signature,
        label_details=types.CompletionItemLabelDetails(description=fn.module),
        documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value="\n\n".join(docs))
        if docs
        else None,
        filter_text=fn.name,
        sort_text=fn.name,
        insert_text_format=fmt,
        text_edit=types.TextEdit(range=edit_range, new_text=new_text),
    )


def _module_item(
    name: str, parent: str | None, edit_range: types.Range, index: WorkspaceIndex
) -> types.CompletionItem:
    short = name[len(parent) + 1 :] if parent else name
    info = index.module(name)
    doc = info.moduledoc if info else None
    return types.CompletionItem(
        label=short,
        kind=types.CompletionItemKind.Module,
        detail=name,
        documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=doc) if doc else None,
        sort_text=f"~{short}",  # after functions of the same prefix
        text_edit=types.TextEdit(range=edit_range, new_text=short),
    )


def _alias_item(short: str, full: str, edit_range: types.Range) -> types.CompletionItem:
    return types.CompletionItem(
        label=short,
        kind=types.CompletionItemKind.Module,
        detail=f"alias {full}",
        text_edit=types.TextEdit(range=edit_range, new_text=short),
    )


def _snippet_escape(text: str) -> str:
    """Escape what snippet syntax reserves inside a placeholder: `\\`, `$` and `}`."""
    return text.replace("\\", "\\\\").replace("$", "\\$").replace("}", "\\}")


def _params(signature: str) -> list[str] | None:
    """Parameter names of `name(a, b \\\\ 1)` without defaults; None when the signature has no list."""
    if "(" not in signature or not signature.endswith(")"):
        return None
    parts = split_args(signature[signature.index("(") + 1 : -1])
    return [part.split("\\\\")[0].strip() or "arg" for part in parts]


def _snippet_support(server: PotionServer) -> bool:
    caps = server.client_capabilities
    try:
        return bool(caps.text_document.completion.completion_item.snippet_support)
    except AttributeError:
        return False
