"""Plain functions behind hover: the target under the cursor, call arity, the markdown."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp.elixir_cursor import Target, target_at
from lsp.features.hover import call_arity, hover_markdown
from lsp.workspace_index import WorkspaceIndex
from potion.elixir import analyze
from potion.elixir.docs import build_index


@pytest.mark.parametrize(
    ("line", "column", "expected"),
    [
        ("  Enum.map(x, f)", 4, Target("Enum", None, 2, 6)),
        ("  Enum.map(x, f)", 8, Target("Enum", "map", 2, 10)),
        ("  Enum.map(x, f)", 10, Target("Enum", "map", 2, 10)),  # right after the name
        ("  x |> String.Chars.to_string()", 15, Target("String.Chars", None, 7, 19)),
        ("  :ets.insert(t, x)", 8, Target(":ets", "insert", 2, 13)),
        ("  foo(bar)", 3, Target(None, "foo", 2, 5)),
        ("  valid?(x)", 4, Target(None, "valid?", 2, 8)),
        ("  __MODULE__.start(1)", 16, Target("__MODULE__", "start", 2, 18)),
        ('  @doc "x"', 4, None),
        ("  key: value", 3, None),
        ("  ", 1, None),
        ("abc", 10, None),  # past the end of the line
        ("  Enum..map", 5, None),
    ],
)
def test_target_at(line: str, column: int, expected: Target | None) -> None:
    assert target_at(line, column) == expected


@pytest.mark.parametrize(
    ("line", "name", "expected"),
    [
        ("Enum.map(list, fn x -> x end)", "Enum.map", 2),
        ("Enum.map(f(a, b), g)", "Enum.map", 2),
        ("now()", "now", 0),
        ('log("a, b")', "log", 1),
        ("list |> Enum.map(fun)", "Enum.map", 2),
        ("Enum.map", "Enum.map", None),
        ("Enum.map(list,", "Enum.map", None),
    ],
)
def test_call_arity(line: str, name: str, expected: int | None) -> None:
    start = line.index(name)
    assert call_arity(line, start, start + len(name)) == expected


CODE = """defmodule MyApp.Worker do
  @moduledoc "Works."
  alias MyApp.Store

  @doc "Runs once."
  @spec run(term) :: :ok
  def run(job), do: job && :ok

  @doc "Runs with options."
  @spec run(term, keyword) :: :ok
  def run(job, opts), do: {job, opts} && :ok

  defp helper(x), do: x
end
"""


@pytest.fixture
def index(tmp_path: Path) -> WorkspaceIndex:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "worker.ex").write_text(CODE)
    (tmp_path / "lib" / "store.ex").write_text(
        'defmodule MyApp.Store do\n  @doc "Puts."\n  def put(k, v), do: {k, v}\nend\n'
    )
    std = tmp_path / "std"
    std.mkdir()
    (std / "kernel.ex").write_text(
        'defmodule Kernel do\n  @doc "Length of a list."\n'
        "  @spec length(list) :: non_neg_integer\n  def length(list), do: list\nend\n"
    )
    (std / "enum.ex").write_text('defmodule Enum do\n  @moduledoc "Enumerables."\nend\n')
    index = WorkspaceIndex([tmp_path / "lib"], stdlib=build_index([std]))
    index.scan()
    return index


def test_hover_on_remote_call_via_alias(index: WorkspaceIndex) -> None:
    worker = analyze(CODE).modules[0]
    text = hover_markdown(index, Target("Store", "put", 0, 0), worker)
    assert text == "```elixir\nMyApp.Store.put(k, v)\n```\n\nPuts."


def test_hover_picks_the_called_arity(index: WorkspaceIndex) -> None:
    both = hover_markdown(index, Target("MyApp.Worker", "run", 0, 0), None)
    assert "@spec run(term) :: :ok" in both and "@spec run(term, keyword) :: :ok" in both
    one = hover_markdown(index, Target("MyApp.Worker", "run", 0, 0), None, arity=2)
    assert "@spec run(term, keyword) :: :ok" in one and "Runs with options." in one
    assert "Runs once." not in one


def test_hover_on_local_private_and_kernel(index: WorkspaceIndex) -> None:
    worker = analyze(CODE).modules[0]
    private = hover_markdown(index, Target(None, "helper", 0, 0), worker)
    assert private.startswith("```elixir\nMyApp.Worker.helper(x)\n```") and "*private*" in private
    kernel = hover_markdown(index, Target(None, "length", 0, 0), worker)
    assert "@spec length(list) :: non_neg_integer" in kernel and "*Elixir*" in kernel
    assert hover_markdown(index, Target(None, "nope", 0, 0), worker) is None


def test_hover_on_modules(index: WorkspaceIndex) -> None:
    assert (
        hover_markdown(index, Target("Enum", None, 0, 0), None)
        == "```elixir\nEnum\n```\n\n*Elixir*\n\nEnumerables."
    )
    worker = analyze(CODE).modules[0]
    assert hover_markdown(index, Target("__MODULE__", None, 0, 0), worker).endswith("Works.")
    assert hover_markdown(index, Target("Nope", None, 0, 0), None) is None
