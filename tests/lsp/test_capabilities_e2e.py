"""What the server advertises to each real client, and completion items for clients without ghost text.

Clients only ask for what the server advertises (vscode-languageclient 9 registers its inline completion
provider from `inlineCompletionProvider`; Neovim 0.12's `vim.lsp.inline_completion` checks it), so the
capabilities are asserted for the capabilities VS Code, Neovim 0.12 and Neovim 0.7 really declare.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from lsp_helpers import (
    fake_options,
    lsp_session,
    neovim_012_capabilities,
    neovim_capabilities,
    open_doc,
    status,
    vscode_capabilities,
    wait_ready,
)
from lsprotocol import types

pytestmark = pytest.mark.timeout(60)

URI = "file:///work/lib/counter.ex"
SOURCE = (
    "defmodule Demo.Counter do\n  def count(list) do\n    Enum.\n  end\n\n  def other do\n    \n  end\nend\n"
)
AFTER_ENUM = types.Position(line=2, character=9)
BLANK = types.Position(line=6, character=4)

# client -> (capabilities, advertised in `initialize`, registered with client/registerCapability)
CLIENTS = {
    "vscode-languageclient-9.0.1": (vscode_capabilities, False, True),
    "neovim-0.12": (neovim_012_capabilities, True, False),
    "neovim-0.7": (neovim_capabilities, False, False),
}


@pytest.mark.parametrize("client_name", CLIENTS)
async def test_inline_completion_is_advertised_the_way_each_client_takes_it(home, client_name: str):
    capabilities, static, dynamic = CLIENTS[client_name]
    async with lsp_session(home, capabilities=capabilities(), options=fake_options([""])) as client:
        # Handled after `initialized`: a registration made there has reached the client before this answer.
        await status(client)
        advertised = client.initialize_result.capabilities
        assert (advertised.inline_completion_provider is not None) is static
        registered = [r for r in client.registrations if r.method == types.TEXT_DOCUMENT_INLINE_COMPLETION]
        assert len(registered) == (1 if dynamic else 0)
        if dynamic:  # no selector of our own: the client's (the Elixir files it started us for) applies
            assert registered[0].register_options == {"documentSelector": None}
        # Every client gets the rest.
        assert list(advertised.completion_provider.trigger_characters) == [".", "@", ":"]
        assert advertised.hover_provider and advertised.code_action_provider
        assert "potion.newModule" in advertised.execute_command_provider.commands


def ai_items(result: types.CompletionList) -> list[types.CompletionItem]:
    return [i for i in result.items if i.label_details and i.label_details.description == "Potion AI"]


async def complete(client, position: types.Position) -> types.CompletionList:
    return await client.text_document_completion_async(
        types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=URI), position=position)
    )


async def test_names_are_answered_at_once_and_the_ai_item_comes_on_the_next_request(home):
    # A slow model (0.1 s a token): were the names held for it, the first answer would carry its item.
    options = fake_options(["map(list, & &1)"], token_delay_ms=100)
    async with lsp_session(home, capabilities=neovim_capabilities(), options=options) as client:
        await wait_ready(client)
        open_doc(client, URI, SOURCE)
        first = await complete(client, AFTER_ENUM)
        assert {"map/2", "reduce/3"} <= {i.label for i in first.items}
        assert ai_items(first) == [] and first.is_incomplete is True
        deadline = time.monotonic() + 20
        while (await status(client))["last"] is None:  # the suggestion was generated meanwhile
            assert time.monotonic() < deadline, "the background suggestion never finished"
            await asyncio.sleep(0.02)
        second = await complete(client, AFTER_ENUM)
        assert [i.text_edit.new_text for i in ai_items(second)] == ["map(list, & &1)"]
        assert second.items[0].label_details.description == "Potion AI"  # first, above the names
        assert {"map/2", "reduce/3"} <= {i.label for i in second.items}
        assert (await status(client))["generations"] == 1  # the second request reused the first's


async def test_without_names_the_request_waits_a_short_budget_for_the_model(home):
    options = {**fake_options(["IO.puts(:hi)"]), "aiItemWaitMs": 10_000}  # long: a loaded CI machine
    async with lsp_session(home, capabilities=neovim_capabilities(), options=options) as client:
        await wait_ready(client)
        open_doc(client, URI, SOURCE)
        result = await complete(client, BLANK)
        assert [i.text_edit.new_text for i in ai_items(result)] == ["IO.puts(:hi)"]
        assert result.is_incomplete is True
