"""Plain functions behind the code actions: module names from paths, insertions, model answers."""

from __future__ import annotations

import pytest

from lsp.code_edits import (
    callbacks_insertion,
    callbacks_without_impl,
    doc_block,
    impl_insertions,
    implementation_code,
    module_name_for_path,
)
from potion.elixir import analyze, attribute_block_start

STUB = """defmodule MathUtil do
  @doc "Sums."
  @spec sum(list(number)) :: number
  def sum(list) do
    raise "not implemented"
  end
end
"""


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/p/lib/my_app/http_worker.ex", "MyApp.HttpWorker"),
        ("/p/apps/web/lib/web/live/page_live.ex", "Web.Live.PageLive"),
        ("/p/scratch.ex", "Scratch"),
        ("/p/test/x_test.exs", None),
        ("/p/lib/1bad.ex", None),
    ],
)
def test_module_name_for_path(path: str, expected: str | None) -> None:
    assert module_name_for_path(path) == expected


@pytest.mark.parametrize(
    "answer",
    [
        '```elixir\n  @doc "Sums."\n  @spec sum(list(number)) :: number\n'
        "  def sum(list) do\n    Enum.sum(list)\n  end\n```",
        'Here:\n```elixir\ndefmodule MathUtil do\n  @doc """\n  Sums.\n  """\n'
        "  def sum(list) do\n    Enum.sum(list)\n  end\n\n  def other, do: 1\nend\n```\nDone.",
        "def sum(list) do\n  Enum.sum(list)\nend\n\nThis uses Enum.sum/1.",
    ],
    ids=["echoes-attributes", "whole-module", "prose-after"],
)
def test_implementation_code_keeps_only_the_clauses(answer: str) -> None:
    fn = analyze(STUB).modules[0].function("sum")
    assert implementation_code(answer, fn, "  ") == "  def sum(list) do\n    Enum.sum(list)\n  end\n"


def test_implementation_code_rejects_useless_answers() -> None:
    fn = analyze(STUB).modules[0].function("sum")
    assert implementation_code("I cannot do that.", fn, "  ") is None
    assert implementation_code("def sum(list) do\n  Enum.sum(list", fn, "  ") is None
    assert implementation_code("def total(list), do: Enum.sum(list)", fn, "  ") is None


def test_multi_clause_answers_are_kept_whole() -> None:
    fn = analyze(STUB).modules[0].function("sum")
    code = implementation_code("def sum([]), do: 0\ndef sum([h | t]), do: h + sum(t)\n", fn, "    ")
    assert code == "    def sum([]), do: 0\n    def sum([h | t]), do: h + sum(t)\n"


def test_doc_block_cleans_model_output() -> None:
    assert doc_block("Adds numbers.", "  ") == '  @doc """\n  Adds numbers.\n  """\n'
    fenced = '```elixir\n@doc """\nAdds.\n\n## Examples\n\n    iex> add(1, 2)\n    3\n"""\n```'
    assert (
        doc_block(fenced, "  ")
        == '  @doc """\n  Adds.\n\n  ## Examples\n\n      iex> add(1, 2)\n      3\n  """\n'
    )
    assert doc_block('@doc "One line."', "") == '@doc """\nOne line.\n"""\n'
    # A heredoc terminator in the text would end the string early: escaped.
    assert '\\"\\"\\"' in doc_block('Quote: """', "")
    assert doc_block("   \n", "  ") == ""


def test_insertions_for_callbacks_and_impl() -> None:
    source = (
        "defmodule C do\n  use GenServer\n\n  def handle_call(:x, _f, s), do: {:reply, s, s}\n"
        "  @spec handle_cast(term, term) :: term\n  def handle_cast(_m, s), do: {:noreply, s}\nend\n"
    )
    lines = source.splitlines(True)
    module = analyze(source).modules[0]
    line, text = callbacks_insertion(lines, module, required_only=True)
    assert line == 6 and text.startswith("\n  @impl true\n  def init(init_arg) do")
    assert [f.name for f in callbacks_without_impl(module)] == ["handle_call", "handle_cast"]
    assert impl_insertions(lines, callbacks_without_impl(module)) == [
        (3, "  @impl true\n"),
        (5, "  @impl true\n"),
    ]
    assert attribute_block_start(lines, 5) == 4
    # A module whose closing `end` is not on its own line is left alone.
    one_liner = "defmodule D do use GenServer end\n"
    assert (
        callbacks_insertion(one_liner.splitlines(True), analyze(one_liner).modules[0], required_only=True)
        is None
    )


def test_the_code_actions_parse_the_answers_the_task_prompts_ask_for() -> None:
    # A model (or a training sample) answering in potion.task_prompts' format is understood here.
    from potion.task_prompts import doc_answer, implementation_answer

    assert doc_block(doc_answer("Sums `list`.\n\nEmpty lists sum to 0."), "  ") == (
        '  @doc """\n  Sums `list`.\n\n  Empty lists sum to 0.\n  """\n'
    )
    fn = analyze(STUB).modules[0].function("sum")
    code = implementation_answer("def sum(list), do: Enum.sum(list)")
    assert implementation_code(code, fn, "  ") == "  def sum(list), do: Enum.sum(list)\n"
