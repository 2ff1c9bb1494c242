"""`textDocument/inlineCompletion` (LSP 3.18): ghost-text suggestions from the model.

Clients ask for ghost text only where the server advertises it (vscode-languageclient 9 registers its
provider from `inlineCompletionProvider`, Neovim 0.12's `vim.lsp.inline_completion` checks it too), so
the capability follows what the client declares:

- `textDocument.inlineCompletion.dynamicRegistration: true` (VS Code): registered with
  `client/registerCapability` after `initialized`, not in the `initialize` result (the spec forbids both);
- `textDocument.inlineCompletion` without dynamic registration (Neovim 0.12): `inlineCompletionProvider`
  in the `initialize` result;
- no inline completion (Neovim 0.7-0.11, older clients): nothing is advertised, and the AI suggestion
  comes as a completion item (`lsp.features.completion`).
"""

from __future__ import annotations

import logging
import uuid

from lsprotocol import types

from lsp.engine import Suggestion
from lsp.server import ACCEPTED_COMMAND, PotionServer
from lsp.telemetry import Record

log = logging.getLogger(__name__)


async def ai_suggestion(
    server: PotionServer, uri: str, position: types.Position, *, kind: str
) -> Suggestion | None:
    """The model's suggestion at `position`, recorded in telemetry; None when AI is off or not ready.

    Until the model is ready this answers at once: the editor must never wait on a loading model.
    """
    suggestion = await engine_suggestion(server, uri, position)
    if suggestion is None:
        return None
    record(server, uri, suggestion, kind)
    return suggestion if suggestion.text else None


async def engine_suggestion(server: PotionServer, uri: str, position: types.Position) -> Suggestion | None:
    """The engine's answer for the cursor state (its text may be empty), unrecorded; None when AI is off,
    the model is not ready, or a newer request superseded this one."""
    if not server.config.inline_completion or not server.model_ready.is_set():
        return None
    request = server.completion_request(uri, position)
    if request is None:
        return None
    return await server.engine.suggest(request)


def record(server: PotionServer, uri: str, suggestion: Suggestion, kind: str) -> None:
    """Metrics and telemetry of a suggestion answered to the client (`kind`: "inline" or "completion")."""
    server.metrics.observe(
        suggestion_id=suggestion.id,
        model=suggestion.model,
        arm=suggestion.arm,
        kind=kind,
        latency_s=suggestion.latency_ms / 1000,
        shown=bool(suggestion.text),
        cache_hit=suggestion.cache_hit,
        timed_out=suggestion.timed_out,
        completion_tokens=suggestion.completion_tokens,
    )
    if server.telemetry is None or not server.config.telemetry:
        return
    server.telemetry.record(
        Record(
            id=suggestion.id,
            uri=uri,
            kind=kind,
            latency_ms=suggestion.latency_ms,
            prompt_tokens=suggestion.prompt_tokens,
            completion_tokens=suggestion.completion_tokens,
            shown=bool(suggestion.text),
            cache_hit=suggestion.cache_hit,
            timed_out=suggestion.timed_out,
            model=suggestion.model,
            arm=suggestion.arm,
        )
    )


def accepted_command(suggestion: Suggestion) -> types.Command:
    return types.Command(
        title="Potion: suggestion accepted", command=ACCEPTED_COMMAND, arguments=[suggestion.id]
    )


def inline_capability(server: PotionServer) -> types.InlineCompletionClientCapabilities | None:
    """What the client declared for inline completion (None: it has none)."""
    caps = server.client_capabilities.text_document if server.client_capabilities else None
    return caps.inline_completion if caps is not None else None


def advertise_statically(server: PotionServer) -> None:
    """At `initialize`: `inlineCompletionProvider` for a client that cannot register it dynamically.

    pygls builds the `initialize` result after this hook, from each feature's options, and lists
    inline completion only when it has options: they are set here for exactly those clients."""
    declared = inline_capability(server)
    options = server.protocol.fm.feature_options
    if declared is not None and not declared.dynamic_registration:
        options[types.TEXT_DOCUMENT_INLINE_COMPLETION] = types.InlineCompletionOptions()
    else:
        options.pop(types.TEXT_DOCUMENT_INLINE_COMPLETION, None)


def register_dynamically(server: PotionServer) -> None:
    """At `initialized`: `client/registerCapability` for a client that declared dynamic registration.
    A null document selector makes the client use its own (the Elixir files it started us for)."""
    declared = inline_capability(server)
    if declared is None or not declared.dynamic_registration:
        return
    registration = types.Registration(
        id=f"potion-inline-{uuid.uuid4().hex[:8]}",
        method=types.TEXT_DOCUMENT_INLINE_COMPLETION,
        register_options=types.InlineCompletionRegistrationOptions(document_selector=None),
    )

    def registered(error: object = None) -> None:
        if error is not None:
            log.warning("the client refused inline completion registration: %s", error)

    server.client_register_capability(types.RegistrationParams(registrations=[registration]), registered)


def register(server: PotionServer) -> None:
    server.add_startup_hook("initialize", advertise_statically)
    server.add_startup_hook("initialized", register_dynamically)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION)
    async def inline_completion(
        ls: PotionServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        suggestion = await ai_suggestion(ls, params.text_document.uri, params.position, kind="inline")
        if suggestion is None:
            return types.InlineCompletionList(items=[])
        here = types.Range(start=params.position, end=params.position)
        item = types.InlineCompletionItem(
            insert_text=suggestion.text, range=here, command=accepted_command(suggestion)
        )
        return types.InlineCompletionList(items=[item])
