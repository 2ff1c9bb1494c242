"""Elixir completions over stdio: `Mod.` functions, modules, locals and missing GenServer callbacks."""

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
    Enum.
    Store.
    MyApp.
    hel
  end

  defp helper(x), do: x

  handle_
end
"""


def project(root: Path) -> Path:
    (root / "lib" / "my_app").mkdir(parents=True)
    (root / "lib" / "my_app" / "store.ex").write_text(
        'defmodule MyApp.Store do\n  @doc "Stores a value."\n  @spec put(term, term) :: :ok\n'
        "  def put(key, value), do: {key, value} && :ok\n  defp hidden, do: 1\nend\n"
    )
    return root


def params(uri: str, line: int, character: int, trigger: str | None = None) -> types.CompletionParams:
    context = (
        types.CompletionContext(
            trigger_kind=types.CompletionTriggerKind.TriggerCharacter, trigger_character=trigger
        )
        if trigger
        else types.CompletionContext(trigger_kind=types.CompletionTriggerKind.Invoked)
    )
    return types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
        context=context,
    )


async def labels_eventually(client, p: types.CompletionParams, want: str, timeout: float = 15.0) -> list:
    """The workspace is indexed in the background: ask until `want` is among the labels."""
    deadline = time.monotonic() + timeout
    while True:
        result = await client.text_document_completion_async(p)
        items = result.items if isinstance(result, types.CompletionList) else result
        if any(i.label == want for i in items) or time.monotonic() > deadline:
            return items
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("capabilities", [vscode_capabilities, neovim_capabilities], ids=["vscode", "neovim"])
async def test_elixir_completions(home, tmp_path, capabilities):
    root = project(tmp_path / "proj")
    uri = (root / "lib" / "my_app" / "counter.ex").as_uri()
    # Model loaded (fake) but the client has inline completion or the answer is empty: only Elixir items.
    async with lsp_session(
        home, capabilities=capabilities(), options=fake_options([""]), root=root
    ) as client:
        open_doc(client, uri, SOURCE)
        enum = await labels_eventually(client, params(uri, 5, 9, "."), "map/2")
        by_label = {i.label: i for i in enum}
        assert {"map/2", "reduce/3", "filter/2"} <= set(by_label)
        map_item = by_label["map/2"]
        assert map_item.text_edit.range == types.Range(
            start=types.Position(line=5, character=9), end=types.Position(line=5, character=9)
        )
        assert "@spec map(" in map_item.documentation.value
        # The VS Code profile supports snippets: arguments become placeholders.
        if capabilities is vscode_capabilities:
            assert map_item.text_edit.new_text == "map(${1:enumerable}, ${2:fun})"
        # A workspace module through its alias: public functions only.
        store = await labels_eventually(client, params(uri, 6, 10, "."), "put/2")
        assert [i.label for i in store] == ["put/2"]
        assert store[0].documentation.value.startswith("```elixir\n@spec put(term, term) :: :ok")
        # Nested modules after a namespace.
        nested = await labels_eventually(client, params(uri, 7, 10, "."), "Store")
        assert "Store" in [i.label for i in nested]
        # A local (private) function, the edit replacing the typed `hel`.
        local = await labels_eventually(client, params(uri, 8, 7), "helper/1")
        helper = next(i for i in local if i.label == "helper/1")
        assert helper.text_edit.range.start == types.Position(line=8, character=4)
        # Missing GenServer callbacks where a new def goes.
        callbacks = await labels_eventually(client, params(uri, 13, 9), "def handle_call/3")
        call = next(i for i in callbacks if i.label == "def handle_call/3")
        assert call.text_edit.new_text.startswith("@impl true\n  def handle_call(request, _from, state) do")
        assert call.text_edit.range == types.Range(
            start=types.Position(line=13, character=2), end=types.Position(line=13, character=9)
        )


async def test_switched_off_and_bad_positions(home, tmp_path):
    uri = (tmp_path / "x.ex").as_uri()
    async with lsp_session(home, capabilities=vscode_capabilities(), options=fake_options([""])) as client:
        open_doc(client, uri, "defmodule X do\n  def f, do: Enum.\nend\n")
        items = (await client.text_document_completion_async(params(uri, 1, 18, "."))).items
        assert "map/2" in [i.label for i in items]
        # Positions past the end of the line or file: an answer, not an error.
        for line, character in [(1, 500), (99, 0), (0, 10**6)]:
            result = await client.text_document_completion_async(params(uri, line, character))
            assert isinstance(result, types.CompletionList)
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"potion": {"elixirCompletion": False}})
        )
        assert list((await client.text_document_completion_async(params(uri, 1, 18, "."))).items) == []


@pytest.mark.slow
async def test_huge_file_and_odd_text(home, tmp_path):
    """A 5 MB buffer and text with astral characters: answers, never errors; items once parsed."""
    uri = (tmp_path / "huge.ex").as_uri()
    body = "".join(f"  def f{i}(x), do: x + {i}\n" for i in range(180_000))
    text = f"defmodule Huge do\n{body}  def g, do: 🧪🧪 = Enum.\nend\n"
    assert len(text) > 5_000_000
    line = text.count("\n") - 2
    character = len("  def g, do: 🧪🧪 = Enum.".encode("utf-16-le")) // 2
    async with lsp_session(home, capabilities=vscode_capabilities(), options=fake_options([""])) as client:
        open_doc(client, uri, text)
        items = await labels_eventually(client, params(uri, line, character, "."), "map/2", timeout=40)
        assert "map/2" in [i.label for i in items]
        local = await labels_eventually(client, params(uri, 2, 8), "f1/1", timeout=40)
        assert "f1/1" in [i.label for i in local]
