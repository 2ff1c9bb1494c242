"""The model-backed code actions on the real default model (Qwen2.5-Coder-0.5B-Instruct)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from lsp_helpers import lsp_session, open_doc, vscode_capabilities, wait_ready
from lsprotocol import types

from potion.elixir import analyze, is_balanced

# Two generations of up to ~60 tokens: seconds on an idle machine, minutes on a busy shared one.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SOURCE = """defmodule MathUtil do
  @spec add(integer, integer) :: integer
  def add(a, b), do: a + b

  @doc "Returns the sum of all numbers in `list`; 0 for an empty list."
  @spec sum(list(number)) :: number
  def sum(list) do
    raise "not implemented"
  end
end
"""


def apply(text: str, edits) -> str:
    lines = text.splitlines(True)
    for edit in sorted(edits, key=lambda e: e.range.start.line, reverse=True):
        lines[edit.range.start.line : edit.range.end.line] = [edit.new_text]
    return "".join(lines)


async def test_write_doc_and_implement_on_the_default_model(home, tmp_path):
    from potion.registry import resolve

    model = str(resolve())
    uri = (tmp_path / "math_util.ex").as_uri()
    seen = []
    async with lsp_session(
        home, capabilities=vscode_capabilities(), options={"model": model, "telemetry": False}
    ) as client:

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            seen.append(params.edit.document_changes[0].edits)
            return types.ApplyWorkspaceEditResult(applied=True)

        await wait_ready(client, timeout=300)
        open_doc(client, uri, SOURCE)
        doc = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="potion.writeDoc", arguments=[{"uri": uri, "line": 2}])
        )
        assert doc == {"applied": True}, client.messages
        documented = apply(SOURCE, seen[-1])
        add = analyze(documented).modules[0].function("add")
        assert add.doc and len(add.doc) > 10 and is_balanced(documented)
        impl = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="potion.implementFunction", arguments=[{"uri": uri, "line": 6}]
            )
        )
        assert impl == {"applied": True}, client.messages
    implemented = apply(SOURCE, seen[-1])
    assert "not implemented" not in implemented and is_balanced(implemented)
    if shutil.which("elixir"):
        (tmp_path / "math_util.ex").write_text(implemented)
        run = subprocess.run(
            ["elixir", "-r", "math_util.ex", "-e", "IO.inspect(MathUtil.sum([1, 2, 3.5]))"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.stdout.strip() == "6.5", implemented + run.stderr
