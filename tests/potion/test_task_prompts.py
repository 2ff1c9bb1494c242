"""Prompts for Elixir tasks (potion.task_prompts) and the attribute-block rule (potion.elixir)."""

from __future__ import annotations

import pytest

from potion.elixir import analyze, attribute_block_start
from potion.task_prompts import (
    SYSTEM_PROMPT,
    doc_answer,
    explain_prompt,
    fenced,
    implement_prompt,
    implementation_answer,
    task_messages,
    write_doc_prompt,
)

SOURCE = '''defmodule Shop.Cart do
  @moduledoc "A cart."
  @type t :: map()
  def new, do: %{}

  @doc """
  Adds `item`.

  It keeps the order.
  """
  @spec add(t, term) :: t
  @impl true
  def add(cart, item) do
    Map.put(cart, item, true)
  end

  # a comment ends the block
  @spec size(t) :: integer
  def size(cart), do: map_size(cart)

  @doc false
  @deprecated "use size/1"
  def count(cart), do: size(cart)
end
'''


def _def_line(name: str) -> int:
    return analyze(SOURCE).modules[0].function(name).line


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("new", "def new"),  # right under module attributes: they are not the function's
        ("add", '@doc """'),  # the heredoc counts whole, with @spec and @impl below it
        ("size", "@spec size"),  # the comment above the @spec ends the block
        ("count", "@doc false"),
    ],
)
def test_attribute_block_starts_at_the_functions_own_attributes(name: str, first: str) -> None:
    lines = SOURCE.splitlines()
    start = attribute_block_start(lines, _def_line(name))
    assert lines[start].strip().startswith(first)


def test_attribute_block_stops_at_a_moduledoc_heredoc_and_at_the_first_line() -> None:
    lines = ['@moduledoc """', "Docs.", '"""', "def f, do: 1"]
    assert attribute_block_start(lines, 3) == 3
    assert attribute_block_start(["@spec f() :: 1", "def f, do: 1"], 1) == 0
    assert attribute_block_start(['x = """', "text", '"""', "def f, do: 1"], 3) == 3  # not an attribute


def test_write_doc_prompt_names_the_function_and_asks_for_a_heredoc() -> None:
    prompt = write_doc_prompt("def size(c), do: 1", function="size/1", module="Shop.Cart", where="cart.ex:3")
    assert "`Shop.Cart.size/1` (cart.ex:3)" in prompt
    assert '@doc """' in prompt and prompt.endswith("```elixir\ndef size(c), do: 1\n```")
    assert "`size/1`" in write_doc_prompt("def size(c), do: 1", function="size/1")


def test_implement_prompt_carries_the_module_as_context_when_given() -> None:
    with_module = implement_prompt(
        "@spec f() :: 1\ndef f, do: nil", function="f/0", module_source="defmodule M do"
    )
    assert with_module.startswith("The module:\n\n```elixir\ndefmodule M do\n```")
    assert "Implement `f/0`" in with_module and with_module.endswith("def f, do: nil\n```")
    assert not implement_prompt("def f, do: nil", function="f/0").startswith("The module")


def test_explain_prompt_says_what_and_where() -> None:
    prompt = explain_prompt("x = 1", what="function f/0", module="M", where="m.ex:1-2")
    assert prompt.startswith("Explain this Elixir function f/0 in module `M` (m.ex:1-2):")
    assert prompt.endswith("```elixir\nx = 1\n```")


def test_fences_outgrow_backticks_in_the_code() -> None:
    assert fenced("a\n```\nb", "elixir").startswith("````elixir\n")


def test_task_messages_are_a_chat_with_an_optional_answer() -> None:
    assert task_messages("q") == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "q"},
    ]
    sample = task_messages("q", system="s", answer="a")
    assert [m["role"] for m in sample] == ["system", "user", "assistant"] and sample[0]["content"] == "s"


def test_answers_are_fenced_elixir_in_the_format_the_prompts_ask_for() -> None:
    answer = doc_answer("Adds.\n\n## Examples\n\n    iex> 1\n    1\n", indent="  ")
    assert answer.startswith('```elixir\n  @doc """\n  Adds.\n\n  ## Examples')
    assert answer.endswith('  """\n```')
    assert implementation_answer("def f, do: 1\n") == "```elixir\ndef f, do: 1\n```"
