"""Code actions and commands: OTP scaffolds, missing callbacks, `@impl true`, and model-written code.

Commands (`workspace/executeCommand`), each taking one object argument:

- `potion.listScaffolds` {} -> [{kind, title, needs}]
- `potion.newModule` {kind, module, uri?, options?} -> {uri, applied}: creates `lib/<path>.ex` from a
  `potion.scaffolds` template (never over an existing file)
- `potion.addMissingCallbacks` {uri, line?, all?} -> {applied}: the behaviour callbacks the module lacks
- `potion.addImpl` {uri, line?} -> {applied}: `@impl true` above callbacks that lack it
- `potion.writeDoc` {uri, line} / `potion.implementFunction` {uri, line} -> {applied}: the model writes
  the function's `@doc`, or its body from the `@doc`/`@spec`; without a ready model they answer
  {applied: false, reason} and say why in one `window/showMessage`.

Edits go to the client through `workspace/applyEdit`, as `TextDocumentEdit`s pinned to the document
version they were computed for: if the user typed meanwhile the client refuses them and nothing is lost.
The deterministic actions also carry their edit in the code action itself (no round trip).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from lsp.callbacks import behaviours_of, missing_callbacks
from lsp.code_edits import (
    callbacks_insertion,
    callbacks_without_impl,
    doc_block,
    function_at,
    impl_insertions,
    implementation_code,
    indent_of,
    module_name_for_path,
)
from lsp.context import uri_path
from lsp.server import PotionServer  # at runtime: pygls reads the command handlers' annotations
from potion.backends import CancelToken
from potion.elixir import attribute_block_start, scope_at
from potion.elixir.model import FunctionDef, ModuleDef
from potion.errors import PotionError
from potion.scaffolds import SCAFFOLDS, module_path, render
from potion.task_prompts import implement_prompt, task_messages, write_doc_prompt

if TYPE_CHECKING:
    from pygls.workspace import TextDocument

log = logging.getLogger(__name__)

LIST_SCAFFOLDS = "potion.listScaffolds"
NEW_MODULE = "potion.newModule"
ADD_MISSING_CALLBACKS = "potion.addMissingCallbacks"
ADD_IMPL = "potion.addImpl"
WRITE_DOC = "potion.writeDoc"
IMPLEMENT_FUNCTION = "potion.implementFunction"
SCAFFOLD_KIND = "refactor.potion.scaffold"

DOC_MAX_TOKENS = 256
IMPLEMENT_MAX_TOKENS = 512
# An explicit request may take much longer than a ghost-text suggestion (a few seconds normally; on a
# busy 2-core machine a 0.5B model has needed ~2 minutes for 60 tokens).
GENERATION_TIMEOUT_S = 180.0
_CONTEXT_CHARS = 4000  # of the module's source given to the model as context


# -- edits -----------------------------------------------------------------------------------------


def _line_edit(line: int, text: str, end_line: int | None = None) -> types.TextEdit:
    """Insert `text` at the start of `line`, or replace whole lines `line..end_line` with it."""
    start = types.Position(line=line, character=0)
    end = types.Position(line=end_line + 1, character=0) if end_line is not None else start
    return types.TextEdit(range=types.Range(start=start, end=end), new_text=text)


def _workspace_edit(
    server: PotionServer, document: TextDocument, edits: list[types.TextEdit]
) -> types.WorkspaceEdit:
    caps = server.client_capabilities.workspace if server.client_capabilities else None
    if caps and caps.workspace_edit and caps.workspace_edit.document_changes:
        ident = types.OptionalVersionedTextDocumentIdentifier(uri=document.uri, version=document.version)
        return types.WorkspaceEdit(
            document_changes=[types.TextDocumentEdit(text_document=ident, edits=edits)]
        )
    return types.WorkspaceEdit(changes={document.uri: edits})


async def _apply(server: PotionServer, edit: types.WorkspaceEdit, label: str) -> bool:
    result = await server.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(edit=edit, label=label))
    if not result.applied:
        log.info("client refused %s: %s", label, result.failure_reason)
    return bool(result.applied)


# -- commands ---------------------------------------------------------------------------------------


def _options(args: tuple[Any, ...], *names: str) -> dict[str, Any]:
    """The command's argument object; positional arguments are accepted in `names` order too."""
    if len(args) == 1 and isinstance(args[0], dict):
        return args[0]
    if len(args) <= len(names) and not any(isinstance(a, dict) for a in args):
        return dict(zip(names, args, strict=False))
    raise JsonRpcInvalidParams(f"expected one object argument with {', '.join(names)}")


def _document(server: PotionServer, opts: dict[str, Any]) -> TextDocument:
    uri = opts.get("uri")
    if not isinstance(uri, str):
        raise JsonRpcInvalidParams("missing 'uri' (the document to change)")
    document = server.document(uri)
    if document is None:
        raise JsonRpcInvalidParams(f"{uri} is not open in the editor")
    return document


def _line(opts: dict[str, Any], default: int = 0) -> int:
    line = opts.get("line", default)
    if isinstance(line, bool) or not isinstance(line, int) or line < 0:
        raise JsonRpcInvalidParams(f"'line' must be a line number, got {line!r}")
    return line


def _module_at(
    server: PotionServer, document: TextDocument, line: int
) -> tuple[ModuleDef, FunctionDef | None]:
    analysis = server.workspace_index.analysis(document.uri)
    if analysis is None:
        raise JsonRpcInvalidParams(f"{document.uri} is not open in the editor")
    scope = scope_at(analysis, line, 0, encoding=server.position_encoding())
    if scope.module is None:
        # Line 0 of a file with one module, or a line between modules: the only module is meant.
        if len(analysis.modules) == 1:
            return analysis.modules[0], None
        raise JsonRpcInvalidParams(f"line {line + 1} is not inside a module")
    # scope_at looks at column 0: a `def` line's own clause starts after the indentation.
    return scope.module, function_at(scope.module, line, scope.function)


def _workspace_root(server: PotionServer, uri: str | None) -> Path:
    folders = [Path(uri_path(f.uri)) for f in server.workspace.folders.values()]
    if not folders and server.workspace.root_path:
        folders = [Path(server.workspace.root_path)]
    if uri:
        path = Path(uri_path(uri))
        inside = [f for f in folders if path.is_relative_to(f)]
        if inside:
            return max(inside, key=lambda f: len(f.parts))
    if not folders:
        raise JsonRpcInvalidParams("no workspace folder: open your project's folder to create modules in it")
    return folders[0]


def register(server: PotionServer) -> None:
    @server.command(LIST_SCAFFOLDS)
    def list_scaffolds(ls: PotionServer, *args: Any) -> list[dict[str, Any]]:
        return [{"kind": s.kind, "title": s.title, "needs": s.needs} for s in SCAFFOLDS.values()]

    @server.command(NEW_MODULE)
    async def new_module(ls: PotionServer, *args: Any) -> dict[str, Any]:
        opts = _options(args, "kind", "module")
        kind, module = opts.get("kind"), opts.get("module")
        options = opts.get("options") or {}
        if not isinstance(options, dict):
            raise JsonRpcInvalidParams("'options' must be an object")
        try:
            text = render(str(kind), str(module or ""), **options)
            relative = module_path(str(module))
        except PotionError as exc:
            raise JsonRpcInvalidParams(exc.user_message()) from None
        target = _workspace_root(ls, opts.get("uri")) / relative
        if target.exists():
            raise JsonRpcInvalidParams(f"{relative} already exists: pick another module name")
        uri = target.as_uri()
        caps = ls.client_capabilities.workspace if ls.client_capabilities else None
        edit_caps = caps.workspace_edit if caps else None
        can_create = bool(
            caps
            and caps.apply_edit
            and edit_caps
            and edit_caps.document_changes
            and types.ResourceOperationKind.Create in (edit_caps.resource_operations or [])
        )
        if can_create:
            edit = types.WorkspaceEdit(
                document_changes=[
                    types.CreateFile(
                        uri=uri, options=types.CreateFileOptions(overwrite=False, ignore_if_exists=False)
                    ),
                    types.TextDocumentEdit(
                        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=None),
                        edits=[_line_edit(0, text)],
                    ),
                ]
            )
            applied = await _apply(ls, edit, f"New {SCAFFOLDS[str(kind)].title} {module}")
        else:
            # A client that cannot create files: write it ourselves (it does not exist, nothing is lost).
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            applied = True
        return {"uri": uri, "path": str(target), "applied": applied}

    @server.command(ADD_MISSING_CALLBACKS)
    async def add_missing_callbacks(ls: PotionServer, *args: Any) -> dict[str, Any]:
        opts = _options(args, "uri", "line", "all")
        document = _document(ls, opts)
        module, _ = _module_at(ls, document, _line(opts))
        known = ls.workspace_index.known_callbacks(module)
        insertion = callbacks_insertion(
            list(document.lines), module, required_only=not opts.get("all"), known=known
        )
        if insertion is None:
            return {"applied": False, "reason": f"{module.name} has no missing callbacks"}
        edit = _workspace_edit(ls, document, [_line_edit(*insertion)])
        return {"applied": await _apply(ls, edit, "Add missing callbacks")}

    @server.command(ADD_IMPL)
    async def add_impl(ls: PotionServer, *args: Any) -> dict[str, Any]:
        opts = _options(args, "uri", "line", "all")
        document = _document(ls, opts)
        module, fn = _module_at(ls, document, _line(opts))
        lines = list(document.lines)
        missing = callbacks_without_impl(module, ls.workspace_index.known_callbacks(module))
        if "line" in opts and not opts.get("all"):
            missing = [f for f in missing if f is fn]
        if not missing:
            return {"applied": False, "reason": "every callback already has @impl"}
        edits = [_line_edit(line, text) for line, text in impl_insertions(lines, missing)]
        return {"applied": await _apply(ls, _workspace_edit(ls, document, edits), "Add @impl true")}

    @server.command(WRITE_DOC)
    async def write_doc(ls: PotionServer, *args: Any) -> dict[str, Any]:
        opts = _options(args, "uri", "line")
        document = _document(ls, opts)
        module, fn = _module_at(ls, document, _line(opts))
        if fn is None:
            raise JsonRpcInvalidParams(f"no function at line {_line(opts) + 1}")
        if fn.doc is not None:
            return _failed(ls, f"{fn.name}/{fn.arity} already has a @doc")
        if not _model_ready(ls):
            return _no_model(ls, "write the @doc")
        version = document.version
        lines = list(document.lines)
        start = attribute_block_start(lines, fn.line)
        prompt = write_doc_prompt(
            "".join(lines[start : fn.end_line + 1]),
            function=f"{fn.name}/{fn.arity}",
            module=module.name,
            where=f"{Path(uri_path(document.uri)).name}:{fn.line + 1}",
        )
        messages = task_messages(prompt)
        text = await _generate(ls, messages, DOC_MAX_TOKENS)
        if text is None:
            return {"applied": False, "reason": "generation failed"}
        block = doc_block(text, indent_of(lines[fn.line]))
        if not block:
            return _failed(ls, "the model wrote no documentation")
        if document.version != version:
            return _failed(ls, "the document changed while the model wrote; run the action again")
        edits = [_line_edit(start, block)]
        return {"applied": await _apply(ls, _workspace_edit(ls, document, edits), "Write @doc")}

    @server.command(IMPLEMENT_FUNCTION)
    async def implement_function(ls: PotionServer, *args: Any) -> dict[str, Any]:
        opts = _options(args, "uri", "line")
        document = _document(ls, opts)
        module, fn = _module_at(ls, document, _line(opts))
        if fn is None:
            raise JsonRpcInvalidParams(f"no function at line {_line(opts) + 1}")
        if not _model_ready(ls):
            return _no_model(ls, "implement the function")
        version = document.version
        lines = list(document.lines)
        start = attribute_block_start(lines, fn.line)
        prompt = implement_prompt(
            "".join(lines[start : fn.end_line + 1]),
            function=f"{fn.name}/{fn.arity}",
            module_source=document.source[:_CONTEXT_CHARS],
        )
        messages = task_messages(prompt)
        text = await _generate(ls, messages, IMPLEMENT_MAX_TOKENS)
        if text is None:
            return {"applied": False, "reason": "generation failed"}
        code = implementation_code(text, fn, indent_of(lines[fn.line]))
        if code is None:
            return _failed(ls, f"the model's answer was not a complete def {fn.name}; nothing was changed")
        if document.version != version:
            return _failed(ls, "the document changed while the model wrote; run the action again")
        edit = _workspace_edit(ls, document, [_line_edit(fn.line, code, fn.end_line)])
        return {"applied": await _apply(ls, edit, f"Implement {fn.name}/{fn.arity}")}

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[types.CodeActionKind.QuickFix, types.CodeActionKind.Refactor, SCAFFOLD_KIND]
        ),
    )
    async def code_actions(ls: PotionServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        if not ls.config.code_actions:
            return None
        document = ls.document(params.text_document.uri)
        if document is None:
            return None
        try:
            # Editors ask on every cursor move: re-parsing after an edit happens off the event loop.
            actions = await asyncio.to_thread(actions_for, ls, document, params.range.start.line)
        except Exception:  # never an error popup for a lightbulb
            log.exception("code actions failed for %s", document.uri)
            return None
        only = params.context.only if params.context else None
        if only:
            actions = [a for a in actions if any(str(a.kind).startswith(str(k)) for k in only)]
        return actions


def actions_for(server: PotionServer, document: TextDocument, line: int) -> list[types.CodeAction]:
    """Every action that applies at `line` of `document`."""
    uri = document.uri
    if not document.source.strip():
        module = module_name_for_path(uri_path(uri))
        if module is None:
            return []
        return [
            types.CodeAction(
                title=f"Potion: {scaffold.title} scaffold for {module}",
                kind=SCAFFOLD_KIND,
                edit=_workspace_edit(server, document, [_line_edit(0, render(scaffold.kind, module))]),
            )
            for scaffold in SCAFFOLDS.values()
        ]
    analysis = server.workspace_index.analysis(uri)
    if analysis is None or not analysis.modules:
        return []
    scope = scope_at(analysis, line, 0, encoding=server.position_encoding())
    module = scope.module or (analysis.modules[0] if len(analysis.modules) == 1 else None)
    if module is None:
        return []
    fn = function_at(module, line, scope.function)
    lines = list(document.lines)
    actions: list[types.CodeAction] = []
    known = server.workspace_index.known_callbacks(module)
    behaviours = ", ".join(behaviours_of(module, known))
    for required_only in (True, False):
        insertion = callbacks_insertion(lines, module, required_only=required_only, known=known)
        if insertion is None:
            continue
        names = ", ".join(
            cb.key for cb in missing_callbacks(module, required_only=required_only, known=known)
        )
        which = "missing" if required_only else "all missing"
        actions.append(
            types.CodeAction(
                title=f"Potion: add {which} {behaviours} callbacks ({names})",
                kind=types.CodeActionKind.QuickFix if required_only else types.CodeActionKind.Refactor,
                is_preferred=required_only,
                edit=_workspace_edit(server, document, [_line_edit(*insertion)]),
            )
        )
    no_impl = callbacks_without_impl(module, known)
    here = [f for f in no_impl if f is fn]
    if here:
        actions.append(
            types.CodeAction(
                title=f"Potion: add @impl true to {fn.name}/{fn.arity}",
                kind=types.CodeActionKind.QuickFix,
                edit=_workspace_edit(
                    server, document, [_line_edit(*e) for e in impl_insertions(lines, here)]
                ),
            )
        )
    if len(no_impl) > len(here):
        actions.append(
            types.CodeAction(
                title=f"Potion: add @impl true to every callback ({len(no_impl)})",
                kind=types.CodeActionKind.QuickFix,
                edit=_workspace_edit(
                    server, document, [_line_edit(*e) for e in impl_insertions(lines, no_impl)]
                ),
            )
        )
    if fn is not None:
        arg = {"uri": uri, "line": fn.line}
        if fn.doc is None and fn.public:
            actions.append(
                types.CodeAction(
                    title=f"Potion: write @doc for {fn.name}/{fn.arity}",
                    kind=types.CodeActionKind.RefactorRewrite,
                    command=types.Command(title="Write @doc", command=WRITE_DOC, arguments=[arg]),
                )
            )
        if fn.doc or fn.spec:
            actions.append(
                types.CodeAction(
                    title=f"Potion: implement {fn.name}/{fn.arity} from its @doc/@spec",
                    kind=types.CodeActionKind.RefactorRewrite,
                    command=types.Command(title="Implement", command=IMPLEMENT_FUNCTION, arguments=[arg]),
                )
            )
    return actions


# -- the model ---------------------------------------------------------------------------------------


def _model_ready(server: PotionServer) -> bool:
    return server.model_ready.is_set() and server.backend is not None


def _no_model(server: PotionServer, what: str) -> dict[str, Any]:
    reason = f"the model is not ready yet, so Potion cannot {what}; try again once it has loaded"
    server.show_message(f"Potion: {reason}", types.MessageType.Warning)
    return {"applied": False, "reason": reason}


def _failed(server: PotionServer, reason: str) -> dict[str, Any]:
    server.show_message(f"Potion: {reason}", types.MessageType.Warning)
    return {"applied": False, "reason": reason}


async def _generate(server: PotionServer, messages: list[dict[str, str]], max_tokens: int) -> str | None:
    """The model's chat answer, generated on the engine's single generation thread (None: it failed,
    and the user was told).

    Sharing that thread keeps "one generation at a time" (llama.cpp is not re-entrant); a pending
    ghost-text generation is cancelled first: the user asked for this one explicitly.
    """
    backend = server.backend
    cancel = CancelToken()

    def run() -> str | None:
        deadline = time.monotonic() + GENERATION_TIMEOUT_S
        out = []
        # Greedy decoding: the same request gives the same code, and small models ramble less.
        for piece in backend.chat(messages, max_tokens=max_tokens, cancel=cancel, temperature=0.0):
            out.append(piece)
            if time.monotonic() > deadline:
                cancel.set()
                limit = f"{GENERATION_TIMEOUT_S:.0f} s"
                message = f"Potion: the model did not finish within {limit}; nothing was changed"
                server.show_message(message, types.MessageType.Warning)
                return None  # half a function or half a doc is worse than none
        log.info("model answer: %r", "".join(out)[:2000])
        return "".join(out)

    server.engine.cancel_running()
    try:
        return await server.engine.run_exclusive(run)
    except asyncio.CancelledError:
        cancel.set()
        raise
    except PotionError as exc:
        server.show_message(f"Potion: generation failed: {exc.user_message()}", types.MessageType.Error)
        return None
