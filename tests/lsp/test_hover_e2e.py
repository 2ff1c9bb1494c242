"""Hover over stdio against `python -m lsp`: stdlib, workspace, deps/ and local functions."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from lsp_helpers import fake_options, lsp_session, neovim_capabilities, open_doc, vscode_capabilities
from lsprotocol import types

pytestmark = pytest.mark.timeout(60)

SOURCE = """defmodule MyApp.Counter do
  use GenServer
  alias MyApp.Store

  def bump(list) do
    list |> Enum.map(&(&1 + 1)) |> Store.put(Jason.encode(list))
    helper(list)
  end

  @doc "Helps. 🧪"
  defp helper(x), do: x
end
"""


def project(root: Path) -> Path:
    (root / "lib" / "my_app").mkdir(parents=True)
    (root / "lib" / "my_app" / "store.ex").write_text(
        'defmodule MyApp.Store do\n  @doc "Stores a value."\n  @spec put(term, term) :: :ok\n'
        "  def put(key, value), do: {key, value} && :ok\nend\n"
    )
    (root / "deps" / "jason" / "lib").mkdir(parents=True)
    (root / "deps" / "jason" / "lib" / "jason.ex").write_text(
        'defmodule Jason do\n  @doc "Encodes a term to JSON."\n'
        "  def encode(input, opts \\\\ []), do: {input, opts}\nend\n"
    )
    return root


def at(line: int, character: int, uri: str) -> types.HoverParams:
    return types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
    )


async def hover_eventually(client, params: types.HoverParams, timeout: float = 15.0) -> types.Hover:
    """The workspace is scanned on a background thread: poll until the answer arrives."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await client.text_document_hover_async(params)
        if result is not None:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"no hover at {params.position}")


@pytest.mark.parametrize("capabilities", [vscode_capabilities, neovim_capabilities], ids=["vscode", "neovim"])
async def test_hover_everywhere(home, tmp_path, capabilities):
    root = project(tmp_path / "proj")
    uri = (root / "lib" / "my_app" / "counter.ex").as_uri()
    async with lsp_session(
        home, capabilities=capabilities(), options=fake_options([""]), root=root
    ) as client:
        open_doc(client, uri, SOURCE)
        # Stdlib, from the shipped docs index: spec and doc of Enum.map/2, range over `Enum.map`.
        enum = await hover_eventually(client, at(5, 19, uri))
        assert "@spec map(" in enum.contents.value and "Returns a list" in enum.contents.value
        assert enum.range == types.Range(
            start=types.Position(line=5, character=12), end=types.Position(line=5, character=20)
        )
        # A workspace module through its alias, and a dependency.
        store = await hover_eventually(client, at(5, 42, uri))
        assert "MyApp.Store.put(key, value)" in store.contents.value
        assert (
            "@spec put(term, term) :: :ok" in store.contents.value
            and "Stores a value." in store.contents.value
        )
        jason = await hover_eventually(client, at(5, 53, uri))
        assert "Encodes a term to JSON." in jason.contents.value and "*deps*" in jason.contents.value
        # A private local function, its doc with a character outside the BMP.
        local = await hover_eventually(client, at(6, 5, uri))
        assert "Helps. 🧪" in local.contents.value and "*private*" in local.contents.value
        # The module itself (stdlib moduledoc) and nothing at all on whitespace or past the end.
        gen = await hover_eventually(client, at(1, 8, uri))
        assert "GenServer" in gen.contents.value and "behaviour" in gen.contents.value
        assert await client.text_document_hover_async(at(4, 0, uri)) is None
        assert await client.text_document_hover_async(at(400, 3, uri)) is None
        assert await client.text_document_hover_async(at(5, 4000, uri)) is None


async def test_hover_follows_unsaved_edits_and_can_be_switched_off(home, tmp_path):
    uri = (tmp_path / "scratch.ex").as_uri()
    async with lsp_session(home, capabilities=vscode_capabilities(), options=fake_options([""])) as client:
        open_doc(client, uri, "defmodule Scratch do\n  def go, do: run()\nend\n")
        assert await client.text_document_hover_async(at(1, 15, uri)) is None
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[
                    types.TextDocumentContentChangeWholeDocument(
                        text="defmodule Scratch do\n  def go, do: run()\n"
                        '  @doc "Runs it."\n  def run, do: :ok\nend\n'
                    )
                ],
            )
        )
        hover = await client.text_document_hover_async(at(1, 15, uri))
        assert hover is not None and "Runs it." in hover.contents.value
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"potion": {"hover": False}})
        )
        assert await client.text_document_hover_async(at(1, 15, uri)) is None
        # A document that was never opened answers nothing, not an error.
        assert await client.text_document_hover_async(at(0, 3, "file:///nowhere.ex")) is None


async def test_files_changed_outside_the_editor(home, tmp_path):
    root = project(tmp_path / "proj")
    uri = (root / "lib" / "my_app" / "counter.ex").as_uri()
    source = "defmodule MyApp.Counter do\n  def go, do: MyApp.Fresh.hello() || MyApp.Store.put(1, 2)\nend\n"
    async with lsp_session(
        home, capabilities=vscode_capabilities(), options=fake_options([""]), root=root
    ) as client:
        open_doc(client, uri, source)
        # lib/my_app/store.ex is the last file the background scan reads: once it is known, the scan is over.
        await hover_eventually(client, at(1, 50, uri))
        assert await client.text_document_hover_async(at(1, 29, uri)) is None
        fresh = root / "lib" / "fresh.ex"
        fresh.write_text('defmodule MyApp.Fresh do\n  @doc "Says hello."\n  def hello, do: :hi\nend\n')

        def changed(kind: types.FileChangeType) -> None:
            client.workspace_did_change_watched_files(
                types.DidChangeWatchedFilesParams(changes=[types.FileEvent(uri=fresh.as_uri(), type=kind)])
            )

        changed(types.FileChangeType.Created)
        hover = await hover_eventually(client, at(1, 29, uri))
        assert "Says hello." in hover.contents.value
        fresh.unlink()
        changed(types.FileChangeType.Deleted)
        assert await client.text_document_hover_async(at(1, 29, uri)) is None
