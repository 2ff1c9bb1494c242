"""`textDocument/completion`: Elixir names (no model needed) plus, for clients without inline
completion (Neovim before 0.12, older VS Code), the model's suggestion as the first item, marked as AI.

The names never wait for the model: when there are any (`Enum.`), they are answered at once with
`isIncomplete: true` while the suggestion is generated in the background; the client asks again as the
user types (or, with an omnifunc, when asked again) and that request gets the finished suggestion. Only
a request with no names to show waits for the model, and at most `ai_item_wait_ms`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING

from lsprotocol import types

from lsp.engine import Suggestion
from lsp.features import elixir_completion
from lsp.features.inline_completion import accepted_command, engine_suggestion, record
from lsp.server import PotionServer, document_split

if TYPE_CHECKING:
    from pygls.workspace import TextDocument

log = logging.getLogger(__name__)

TRIGGER_CHARACTERS = [".", "@", ":"]
_WORD_TAIL = re.compile(r"[\w?!]*$")
_LABEL_WIDTH = 60


def ai_item(
    server: PotionServer, document: TextDocument, position: types.Position, text: str
) -> types.CompletionItem:
    """A completion item that inserts the suggestion; its edit replaces the word being typed, so the
    client's filtering on that word keeps the item visible."""
    prefix, _ = document_split(document, position)
    line_prefix = prefix[prefix.rfind("\n") + 1 :]
    word = _WORD_TAIL.search(line_prefix).group(0)
    start = types.Position(
        line=position.line,
        character=max(0, position.character - document.position_codec.client_num_units(word)),
    )
    new_text = word + text
    first = new_text.split("\n", 1)[0]
    label = first if len(first) <= _LABEL_WIDTH else first[: _LABEL_WIDTH - 1] + "…"
    if "\n" in new_text:
        label += " …"
    return types.CompletionItem(
        label=label.strip() or "(indent)",
        kind=types.CompletionItemKind.Snippet,
        detail="Potion AI suggestion",
        label_details=types.CompletionItemLabelDetails(description="Potion AI"),
        documentation=types.MarkupContent(
            kind=types.MarkupKind.Markdown, value=f"```elixir\n{new_text}\n```"
        ),
        filter_text=first,
        sort_text="0",
        preselect=True,
        insert_text_format=types.InsertTextFormat.PlainText,
        text_edit=types.TextEdit(range=types.Range(start=start, end=position), new_text=new_text),
    )


class BackgroundSuggestion:
    """The suggestion being generated for the latest completion request's cursor state.

    A request for the same state (same document version and position) joins it instead of starting
    over; a request for another state starts a new one, and the engine drops the old generation.
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._task: asyncio.Task[Suggestion | None] | None = None

    def for_cursor(
        self, server: PotionServer, uri: str, version: int | None, position: types.Position
    ) -> asyncio.Task[Suggestion | None]:
        key = (uri, version, position.line, position.character)
        task = self._task
        if task is not None and key == self._key and not (task.done() and _result(task) is None):
            return task
        self._key = key
        self._task = asyncio.ensure_future(engine_suggestion(server, uri, position))
        self._task.add_done_callback(_log_failure)
        return self._task


def _result(task: asyncio.Task[Suggestion | None]) -> Suggestion | None:
    if not task.done() or task.cancelled() or task.exception() is not None:
        return None
    return task.result()


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("background suggestion failed: %s", exc)


def register(server: PotionServer) -> None:
    background = BackgroundSuggestion()

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=TRIGGER_CHARACTERS, resolve_provider=False),
    )
    async def completion(ls: PotionServer, params: types.CompletionParams) -> types.CompletionList:
        uri = params.text_document.uri
        document = ls.document(uri)
        if document is None:
            return types.CompletionList(is_incomplete=False, items=[])
        items: list[types.CompletionItem] = []
        if ls.config.elixir_completion:
            items.extend(elixir_completion.completion_items(ls, document, params.position))
        ai_wanted = (
            ls.config.inline_completion and ls.model_ready.is_set() and not ls.client_has_inline_completion()
        )
        if ai_wanted:
            task = background.for_cursor(ls, uri, document.version, params.position)
            # With names to show, not a moment's wait; without, a short one for the model.
            wait = 0.0 if items else ls.config.ai_item_wait_ms / 1000
            if wait > 0:
                await asyncio.wait([task], timeout=wait)
            else:
                await asyncio.sleep(0)  # lets a cached suggestion (typed-through) answer now
            suggestion = _result(task)
            if suggestion is not None and suggestion.text:
                record(ls, uri, suggestion, "completion")
                item = ai_item(ls, document, params.position, suggestion.text)
                item.command = accepted_command(suggestion)
                items.insert(0, item)
        # Incomplete while AI is on: the client asks again as the user types, and that request gets the
        # suggestion generated meanwhile (or the engine's type-through cache answers it).
        return types.CompletionList(is_incomplete=bool(ai_wanted), items=items)
