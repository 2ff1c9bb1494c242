"""`textDocument/inlineCompletion` (LSP 3.18): ghost-text suggestions from the model."""

from __future__ import annotations

import logging

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
    if not server.config.inline_completion or not server.model_ready.is_set():
        return None
    request = server.completion_request(uri, position)
    if request is None:
        return None
    suggestion = await server.engine.suggest(request)
    if suggestion is None:
        return None
    if server.telemetry is not None and server.config.telemetry:
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
            )
        )
    return suggestion if suggestion.text else None


def accepted_command(suggestion: Suggestion) -> types.Command:
    return types.Command(
        title="Potion: suggestion accepted", command=ACCEPTED_COMMAND, arguments=[suggestion.id]
    )


def register(server: PotionServer) -> None:
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
