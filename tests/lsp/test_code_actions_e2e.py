"""Code actions and commands over stdio: scaffolds, callbacks, @impl, and the model writing code."""

from __future__ import annotations

import ast
import asyncio
import shutil
import subprocess
from typing import Any

import pytest
from lsp_helpers import (
    fake_options,
    lsp_session,
    neovim_capabilities,
    open_doc,
    vscode_capabilities,
    wait_ready,
)
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from potion.scaffolds import SCAFFOLDS, render

pytestmark = pytest.mark.timeout(60)

COUNTER = """defmodule MyApp.Counter do
  use GenServer

  def start_link(n), do: GenServer.start_link(__MODULE__, n)

  @spec add(integer, integer) :: integer
  def add(a, b) do
    nil
  end

  def handle_call(:get, _from, s), do: {:reply, s, s}

  def handle_cast({:set, v}, _s) do
    {:noreply, v}
  end
end
"""


def record_edits(client) -> list[types.ApplyWorkspaceEditParams]:
    """Make the test client accept `workspace/applyEdit` like an editor, remembering each edit."""
    seen: list[types.ApplyWorkspaceEditParams] = []

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        seen.append(params)
        return types.ApplyWorkspaceEditResult(applied=True)

    return seen


def apply_text_edits(text: str, edits: list[types.TextEdit]) -> str:
    """Apply line-based edits (character 0 .. character 0) the way an editor would."""
    lines = text.splitlines(True)
    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        assert edit.range.start.character == 0 and edit.range.end.character == 0
        lines[edit.range.start.line : edit.range.end.line] = [edit.new_text]
    return "".join(lines)


def edits_of(edit: types.WorkspaceEdit, uri: str) -> list[types.TextEdit]:
    if edit.document_changes:
        return [
            e for change in edit.document_changes if change.text_document.uri == uri for e in change.edits
        ]
    return list(edit.changes[uri])


def command_of(action: types.CodeAction | types.Command) -> tuple[str, list]:
    """(command, arguments) of a code action that runs a command.

    lsprotocol structures any `Command | CodeAction` object with a "command" key as a Command, so on
    this (Python) client side a CodeAction arrives with its Command's repr as `.command`; editors
    read the JSON and are not affected.
    """
    if isinstance(action, types.CodeAction):
        return action.command.command, list(action.command.arguments)
    inner = ast.literal_eval(action.command)
    return inner["command"], inner["arguments"]


async def execute(client, command: str, *arguments: Any) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=command, arguments=list(arguments))
    )


async def actions(client, uri: str, line: int) -> list[types.CodeAction]:
    position = types.Position(line=line, character=0)
    result = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=position, end=position),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    return list(result or [])


async def test_new_module_from_each_scaffold(home, tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    async with lsp_session(
        home, capabilities=vscode_capabilities(), options=fake_options([""]), root=root
    ) as client:
        edits = record_edits(client)
        kinds = await execute(client, "potion.listScaffolds")
        assert [k["kind"] for k in kinds] == list(SCAFFOLDS)
        assert kinds[0]["title"] == "GenServer"
        result = await execute(client, "potion.newModule", {"kind": "genserver", "module": "MyApp.Worker"})
        target = root / "lib" / "my_app" / "worker.ex"
        assert result["uri"] == target.as_uri() and result["applied"] is True
        create, fill = edits[-1].edit.document_changes
        assert create.kind == "create" and create.uri == target.as_uri() and create.options.overwrite is False
        assert fill.edits[0].new_text == render("genserver", "MyApp.Worker")
        # Positional arguments work too (`:PotionNewModule supervisor MyApp.Sup` style clients).
        result = await execute(client, "potion.newModule", "supervisor", "MyApp.Sup")
        assert result["uri"].endswith("/lib/my_app/sup.ex")
        # Bad input: one clear error each, and an existing file is never overwritten.
        target.parent.mkdir(parents=True)
        target.write_text("# mine\n")
        for args, message in [
            ({"kind": "genserver", "module": "MyApp.Worker"}, "already exists"),
            ({"kind": "genserver", "module": "my_app.worker"}, "invalid module name"),
            ({"kind": "nope", "module": "MyApp.X"}, "unknown scaffold"),
            ({"kind": "genserver"}, "module name"),
            ({"kind": "genserver", "module": "MyApp.Y", "options": {"state": "%{"}}, "invalid state"),
        ]:
            with pytest.raises(JsonRpcInvalidParams, match=message):
                await execute(client, "potion.newModule", args)
        assert target.read_text() == "# mine\n"
        assert len(edits) == 2


async def test_new_module_written_directly_for_clients_without_file_creation(home, tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    caps = neovim_capabilities()
    caps.workspace.workspace_edit.resource_operations = None
    async with lsp_session(home, capabilities=caps, options=fake_options([""]), root=root) as client:
        record_edits(client)
        result = await execute(client, "potion.newModule", {"kind": "agent", "module": "MyApp.Bucket"})
        path = root / "lib" / "my_app" / "bucket.ex"
        assert result == {"uri": path.as_uri(), "path": str(path), "applied": True}
        assert path.read_text() == render("agent", "MyApp.Bucket")


@pytest.mark.parametrize("capabilities", [vscode_capabilities, neovim_capabilities], ids=["vscode", "neovim"])
async def test_callback_and_impl_quick_fixes(home, tmp_path, capabilities):
    uri = (tmp_path / "lib" / "counter.ex").as_uri()
    async with lsp_session(home, capabilities=capabilities(), options=fake_options([""])) as client:
        open_doc(client, uri, COUNTER)
        found = {a.title: a for a in await actions(client, uri, 10)}
        missing = found["Potion: add missing GenServer callbacks (init/1)"]
        assert missing.kind == types.CodeActionKind.QuickFix and missing.is_preferred
        fixed = apply_text_edits(COUNTER, edits_of(missing.edit, uri))
        assert "  @impl true\n  def init(init_arg) do\n    {:ok, init_arg}\n  end\nend\n" in fixed
        impl_here = found["Potion: add @impl true to handle_call/3"]
        with_impl = apply_text_edits(COUNTER, edits_of(impl_here.edit, uri))
        assert "  @impl true\n  def handle_call(:get" in with_impl and with_impl.count("@impl true") == 1
        every = found["Potion: add @impl true to every callback (2)"]
        assert apply_text_edits(COUNTER, edits_of(every.edit, uri)).count("@impl true") == 2
        assert any(
            t.startswith(
                "Potion: add all missing GenServer callbacks (init/1, handle_info/2, handle_continue/2"
            )
            for t in found
        )
        # On a function: the model-backed actions, as commands.
        on_add = {a.title: a for a in await actions(client, uri, 6)}
        assert command_of(on_add["Potion: write @doc for add/2"]) == (
            "potion.writeDoc",
            [{"uri": uri, "line": 6}],
        )
        implement = command_of(on_add["Potion: implement add/2 from its @doc/@spec"])
        assert implement[0] == "potion.implementFunction"
        # The same fixes through executeCommand.
        edits = record_edits(client)
        assert await execute(client, "potion.addMissingCallbacks", {"uri": uri}) == {"applied": True}
        assert await execute(client, "potion.addImpl", {"uri": uri}) == {"applied": True}
        assert len(edits) == 2
        # Feature switch off: no actions.
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"potion": {"codeActions": False}})
        )
        assert await actions(client, uri, 10) == []


@pytest.mark.elixir
async def test_fixed_module_compiles(home, tmp_path):
    if shutil.which("elixirc") is None:
        pytest.skip("needs elixirc")
    uri = (tmp_path / "counter.ex").as_uri()
    async with lsp_session(home, capabilities=vscode_capabilities(), options=fake_options([""])) as client:
        open_doc(client, uri, COUNTER)
        found = {a.title: a for a in await actions(client, uri, 10)}
        text = apply_text_edits(
            COUNTER, edits_of(found["Potion: add missing GenServer callbacks (init/1)"].edit, uri)
        )
    path = tmp_path / "counter.ex"
    path.write_text(text)
    out = subprocess.run(["elixirc", str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "required by behaviour GenServer" not in out.stderr


async def test_scaffold_actions_in_an_empty_file(home, tmp_path):
    uri = (tmp_path / "lib" / "my_app" / "cache.ex").as_uri()
    async with lsp_session(home, capabilities=vscode_capabilities(), options=fake_options([""])) as client:
        open_doc(client, uri, "")
        found = await actions(client, uri, 0)
        assert len(found) == len(SCAFFOLDS)
        genserver = next(a for a in found if a.title == "Potion: GenServer scaffold for MyApp.Cache")
        assert genserver.kind == "refactor.potion.scaffold"
        assert apply_text_edits("", edits_of(genserver.edit, uri)) == render("genserver", "MyApp.Cache")


async def test_model_writes_doc_and_implements(home, tmp_path):
    uri = (tmp_path / "counter.ex").as_uri()
    answers = [
        "Adds `a` and `b`.\n\n## Examples\n\n    iex> add(1, 2)\n    3",
        "Sure:\n```elixir\n@spec add(integer, integer) :: integer\ndef add(a, b) do\n  a + b\nend\n```",
        "I cannot do that.",
    ]
    async with lsp_session(home, capabilities=vscode_capabilities(), options=fake_options(answers)) as client:
        edits = record_edits(client)
        await wait_ready(client)
        open_doc(client, uri, COUNTER)
        assert await execute(client, "potion.writeDoc", {"uri": uri, "line": 6}) == {"applied": True}
        change = edits[-1].edit.document_changes[0]
        assert change.text_document.version == 1  # pinned: a client that moved on refuses it
        documented = apply_text_edits(COUNTER, change.edits)
        doc = '  @doc """\n  Adds `a` and `b`.\n\n  ## Examples\n\n      iex> add(1, 2)\n      3\n  """\n'
        assert doc + "  @spec add" in documented
        assert await execute(client, "potion.implementFunction", {"uri": uri, "line": 7}) == {"applied": True}
        implemented = apply_text_edits(COUNTER, edits[-1].edit.document_changes[0].edits)
        body = "  def add(a, b) do\n    a + b\n  end\n\n  def handle_call"
        assert "  @spec add(integer, integer) :: integer\n" + body in implemented
        # A useless answer changes nothing and says so.
        result = await execute(client, "potion.implementFunction", {"uri": uri, "line": 6})
        assert result["applied"] is False and "not a complete def add" in result["reason"]
        assert len(edits) == 2
        assert any("not a complete def add" in m.message for m in client.messages)
        # Bad arguments: a clear error.
        with pytest.raises(JsonRpcInvalidParams, match="not open"):
            await execute(client, "potion.writeDoc", {"uri": "file:///nope.ex", "line": 0})
        with pytest.raises(JsonRpcInvalidParams, match="no function at line 2"):
            await execute(client, "potion.writeDoc", {"uri": uri, "line": 1})
        with pytest.raises(JsonRpcInvalidParams, match="line"):
            await execute(client, "potion.writeDoc", {"uri": uri, "line": "x"})


async def test_model_actions_without_a_ready_model(home, tmp_path):
    uri = (tmp_path / "counter.ex").as_uri()
    options = fake_options(["never used"], load_delay_ms=20000)
    async with lsp_session(home, capabilities=vscode_capabilities(), options=options) as client:
        edits = record_edits(client)
        open_doc(client, uri, COUNTER)
        started = asyncio.get_running_loop().time()
        result = await execute(client, "potion.writeDoc", {"uri": uri, "line": 6})
        assert asyncio.get_running_loop().time() - started < 5
        assert result["applied"] is False and "not ready" in result["reason"]
        for _ in range(100):
            if client.messages:
                break
            await asyncio.sleep(0.02)
        assert "not ready" in client.messages[-1].message
        assert edits == []


async def test_missing_callbacks_of_a_workspace_behaviour(home, tmp_path):
    root = tmp_path / "proj"
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "plugin.ex").write_text(
        "defmodule MyApp.Plugin do\n  @callback run(job :: term) :: :ok\n"
        "  @callback stop() :: :ok\n  @optional_callbacks stop: 0\nend\n"
    )
    source = "defmodule MyApp.Echo do\n  @behaviour MyApp.Plugin\nend\n"
    uri = (root / "lib" / "echo.ex").as_uri()
    async with lsp_session(
        home, capabilities=vscode_capabilities(), options=fake_options([""]), root=root
    ) as client:
        open_doc(client, uri, source)
        title = "Potion: add missing MyApp.Plugin callbacks (run/1)"
        for _ in range(300):  # the workspace is scanned in the background
            found = {a.title: a for a in await actions(client, uri, 1)}
            if title in found:
                break
            await asyncio.sleep(0.05)
        fixed = apply_text_edits(source, edits_of(found[title].edit, uri))
        assert fixed == (
            "defmodule MyApp.Echo do\n  @behaviour MyApp.Plugin\n\n  @impl true\n  def run(_job) do\n"
            '    raise "MyApp.Plugin.run/1 is not implemented yet"\n  end\nend\n'
        )
