"""Re-analysis of only what an edit touched (potion.elixir.incremental through Document.edit)."""

from __future__ import annotations

import random

import pytest

import potion.elixir.document as document_module
from potion.elixir import Document, analyze

SOURCE = """defmodule Shop.Cart do
  @moduledoc "A cart."

  @doc "Adds."
  @spec add(map, term) :: map
  def add(cart, item) when is_map(cart) do
    Map.put(cart, item, true)
  end

  def add(cart, _item), do: cart

  defp size(cart) do
    map_size(cart)
  end

  defmodule Line do
    def total(line) do
      line.price * line.qty
    end
  end
end

defmodule Shop.Other do
  def go, do: :ok
end
"""


def same_as_fresh(doc: Document) -> None:
    fresh = analyze(doc.text)
    assert doc.analysis.modules == fresh.modules
    assert doc.analysis.errors == fresh.errors
    assert [doc.analysis.lines.offset(n, 0) for n in range(doc.text.count("\n"))] == [
        fresh.lines.offset(n, 0) for n in range(doc.text.count("\n"))
    ]


@pytest.fixture
def full_analyses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the edits that fell back to analysing the whole tree."""
    calls: list[int] = []
    original = document_module.analyze_tree

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(document_module, "analyze_tree", counting)
    return calls


def test_an_edit_inside_a_body_moves_what_follows_without_a_full_analysis(full_analyses) -> None:
    doc = Document(SOURCE)
    full_analyses.clear()
    # Two new lines in add/2's body: everything below moves two lines down.
    doc.edit(6, 4, 6, 4, "cart = Map.new(cart)\n    x = 1\n    ")
    assert full_analyses == []
    same_as_fresh(doc)
    assert doc.analysis.module("Shop.Other").line == 24 and doc.analysis.module("Shop.Cart").end_line == 22
    # A deletion inside the nested module's function body, in the middle of a line.
    doc.edit(19, 17, 19, 28, "")
    assert full_analyses == []
    same_as_fresh(doc)


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        ((5, 6, 5, 9, "put"), "a def head"),
        ((3, 8, 3, 13, "Puts"), "an attribute"),
        ((6, 4, 6, 4, "end\n  def extra do\n    "), "a body that now ends earlier"),
        ((6, 4, 6, 4, "Map.put(("), "code that no longer parses"),
        ((9, 24, 9, 28, "nil"), "a do: keyword body"),
    ],
)
def test_other_edits_are_analysed_whole(full_analyses, edit, why) -> None:
    doc = Document(SOURCE)
    full_analyses.clear()
    doc.edit(*edit)
    assert full_analyses == [1], why
    same_as_fresh(doc)


def test_random_keystrokes_always_match_a_fresh_analysis() -> None:
    rng = random.Random(16)
    doc = Document(SOURCE)
    snippets = ["x", "é", "🧪", "\n", "    ", "end", "(", ")", "def ", '"', "# c"]
    for _ in range(150):
        text = doc.text
        lines = text.split("\n")
        line = rng.randrange(len(lines))
        col = rng.randrange(len(lines[line]) + 1)
        if rng.random() < 0.3 and col < len(lines[line]):
            doc.edit(line, col, line, min(len(lines[line]), col + rng.randint(1, 4)), "", encoding="utf-32")
        else:
            doc.edit(line, col, line, col, rng.choice(snippets), encoding="utf-32")
        same_as_fresh(doc)
