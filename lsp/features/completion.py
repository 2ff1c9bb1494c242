"""`textDocument/completion`: Elixir names (no model needed) plus, for clients without inline
completion (Neovim before 0.12, older VS Code), the model's suggestion as the first item, marked as AI."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from lsprotocol import types

from lsp.features import elixir_completion
from lsp.features.inline_completion import accepted_command, ai_suggestion
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


def register(server: PotionServer) -> None:
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
        ai_wanted = not ls.client_has_inline_completion() and ls.model_ready.is_set()
        # After `Module.` the names are what the user asked for: do not hold them back for the model.
        triggered = params.context is not None and params.context.trigger_character in TRIGGER_CHARACTERS
        if ai_wanted and not (triggered and items):
            suggestion = await ai_suggestion(ls, uri, params.position, kind="completion")
            if suggestion is not None:
                item = ai_item(ls, document, params.position, suggestion.text)
                item.command = accepted_command(suggestion)
                items.insert(0, item)
        # Incomplete while AI is on: the client asks again as the user types, and the engine's
        # type-through cache answers those requests without a new generation.
        return types.CompletionList(is_incomplete=ai_wanted, items=items)
