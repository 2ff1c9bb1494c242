"""End to end over stdio with the FakeBackend: VS Code-like and Neovim-like clients."""

from __future__ import annotations

import asyncio

import pytest
from lsp_helpers import (
    fake_options,
    lsp_session,
    neovim_capabilities,
    open_doc,
    status,
    vscode_capabilities,
    wait_ready,
)
from lsprotocol import types

pytestmark = pytest.mark.timeout(60)

URI = "file:///work/lib/counter.ex"
SOURCE = "defmodule Demo.Counter do\n  use GenServer\n\n  def increment do\n    \n  end\nend\n"
CURSOR = types.Position(line=4, character=4)
ANSWER = "GenServer.call(__MODULE__, :increment)\n  end\n\n  def other do"


async def test_vscode_inline_completion(home):
    async with lsp_session(
        home, capabilities=vscode_capabilities(), options=fake_options([ANSWER])
    ) as client:
        await wait_ready(client)
        open_doc(client, URI, SOURCE)
        result = await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=URI),
                position=CURSOR,
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Automatic
                ),
            )
        )
        assert [item.insert_text for item in result.items] == ["GenServer.call(__MODULE__, :increment)"]
        item = result.items[0]
        assert item.range == types.Range(start=CURSOR, end=CURSOR)
        assert item.command is not None and item.command.command == "potion.accepted"
        # Accepting runs the item's command: telemetry marks the suggestion accepted.
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=item.command.command, arguments=item.command.arguments)
        )
        state = await status(client)
        assert state["generations"] == 1
        # Even an instant load shows a whole $/progress: begin once the client created the token, then end.
        reports = [type(r).__name__ for values in client.progress_reports.values() for r in values]
        assert reports == ["WorkDoneProgressBegin", "WorkDoneProgressEnd"]
    db = home / "data" / "telemetry.sqlite3"
    import sqlite3

    rows = sqlite3.connect(db).execute("SELECT kind, shown, accepted, cache_hit FROM suggestions").fetchall()
    assert rows == [("inline", 1, 1, 0)]


async def test_neovim_gets_ai_completion_items(home):
    async with lsp_session(
        home, capabilities=neovim_capabilities(), options=fake_options([ANSWER])
    ) as client:
        await wait_ready(client)
        source = SOURCE.replace("    \n", "    Gen\n")
        open_doc(client, URI, source)
        position = types.Position(line=4, character=7)
        params = types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI), position=position
        )
        first = await client.text_document_completion_async(params)
        assert "GenServer" in {i.label for i in first.items}  # the names at once, the model meanwhile
        while (await status(client))["last"] is None:
            await asyncio.sleep(0.02)
        result = await client.text_document_completion_async(params)
        ai = [i for i in result.items if i.label_details and i.label_details.description == "Potion AI"]
        assert len(ai) == 1, result.items
        edit = ai[0].text_edit
        # The edit replaces the word being typed ("Gen") so the client's filter keeps the item.
        assert edit.range == types.Range(start=types.Position(line=4, character=4), end=position)
        assert edit.new_text == "GenGenServer.call(__MODULE__, :increment)"
        assert result.is_incomplete is True


async def test_capabilities_and_no_inline_for_vscode_completion(home):
    async with lsp_session(
        home, capabilities=vscode_capabilities(), options=fake_options([ANSWER])
    ) as client:
        await wait_ready(client)
        open_doc(client, URI, SOURCE)
        result = await client.text_document_completion_async(
            types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=URI), position=CURSOR)
        )
        # A client with inline completion gets the model only as ghost text, never duplicated as items.
        assert not [i for i in result.items if i.label_details and i.label_details.description == "Potion AI"]
        assert (await status(client))["generations"] == 0


async def test_ai_answers_empty_until_model_ready(home):
    options = fake_options([ANSWER], load_delay_ms=1500)
    async with lsp_session(home, capabilities=vscode_capabilities(), options=options) as client:
        open_doc(client, URI, SOURCE)
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=CURSOR,
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        early = await client.text_document_inline_completion_async(params)
        assert list(early.items) == [] and loop.time() - started < 1.0
        await wait_ready(client)
        late = await client.text_document_inline_completion_async(params)
        assert len(late.items) == 1
        # $/progress told the client about the load, begin to end.
        reports = [r for values in client.progress_reports.values() for r in values]
        kinds = [type(r).__name__ for r in reports]
        assert kinds[0] == "WorkDoneProgressBegin" and kinds[-1] == "WorkDoneProgressEnd"


async def test_model_failure_shows_one_message_and_keeps_serving(home):
    options = fake_options([ANSWER], load_error="no such model: nope")
    async with lsp_session(home, capabilities=neovim_capabilities(), options=options) as client:
        open_doc(client, URI, SOURCE)
        for _ in range(200):
            if client.messages:
                break
            await asyncio.sleep(0.02)
        assert len(client.messages) == 1
        assert client.messages[0].type == types.MessageType.Error
        assert "no such model: nope" in client.messages[0].message
        result = await client.text_document_completion_async(
            types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=URI), position=CURSOR)
        )
        assert all(not (i.label_details and i.label_details.description == "Potion AI") for i in result.items)
        assert (await status(client))["model_ready"] is False


async def test_settings_change_and_bad_setting(home):
    async with lsp_session(
        home, capabilities=vscode_capabilities(), options=fake_options([ANSWER])
    ) as client:
        await wait_ready(client)
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"potion": {"debounceMs": "soon"}})
        )
        for _ in range(200):
            if client.messages:
                break
            await asyncio.sleep(0.02)
        assert "debounceMs" in client.messages[0].message
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"potion": {"inlineCompletion": False}})
        )
        open_doc(client, URI, SOURCE)
        result = await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=URI),
                position=CURSOR,
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
            )
        )
        assert list(result.items) == []


async def test_percent_encoded_uri_is_tracked_through_changes(home):
    uri = "file:///w/my%20app/lib/counter.ex"  # VS Code encodes the space in a folder name
    # In SOURCE, line 1 already reads "  use GenServer": there the answer would repeat it and be dropped.
    options = fake_options(["use GenServer"])
    async with lsp_session(home, capabilities=vscode_capabilities(), options=options) as client:
        await wait_ready(client)
        open_doc(client, uri, SOURCE)
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[
                    types.TextDocumentContentChangeWholeDocument(text="defmodule B do\n  \nend\n")
                ],
            )
        )
        result = await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=1, character=2),
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
            )
        )
        assert [i.insert_text for i in result.items] == ["use GenServer"]


async def test_changing_the_model_setting_reloads_the_backend(home):
    async with lsp_session(
        home, capabilities=vscode_capabilities(), options=fake_options(["first()"])
    ) as client:
        await wait_ready(client)
        open_doc(client, URI, SOURCE)
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=CURSOR,
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
        )
        assert (await client.text_document_inline_completion_async(params)).items[0].insert_text == "first()"
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"potion": {"fake": {"responses": ["second()"]}}})
        )
        for _ in range(500):  # the old model is dropped at once, the new one loads in the background
            result = await client.text_document_inline_completion_async(params)
            if result.items and result.items[0].insert_text == "second()":
                break
            await asyncio.sleep(0.02)
        assert result.items[0].insert_text == "second()"  # and not the cached answer of the old model
