"""Near-dedup (MinHash LSH) and stage-2 sample extraction from real Elixir."""

from __future__ import annotations

import random

from corpus import dedup
from corpus.config import CorpusConfig
from corpus.process import process_file
from corpus.samples import doctest_examples, draft_samples, select
from corpus.schema import check_messages
from potion.elixir import analyze


def _module(name: str, seed: int, n: int = 12) -> str:
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta", "lambda", "zeta"]
    fns = []
    for i in range(n):
        a, b = rng.sample(words, 2)
        fns.append(f"  def {a}_{i}({b}), do: {b} |> Enum.map(&(&1 + {rng.randint(1, 99)})) |> Enum.sum()\n")
    return f"defmodule {name} do\n" + "".join(fns) + "end\n"


def test_planted_near_duplicates_found_distinct_kept():
    base = _module("Planted", 1)
    near = base.replace("Planted", "Planted2").replace("+ ", "+  ", 1)  # renamed, one token changed
    lines = base.splitlines()
    lines[3] = "  def changed_line(x), do: x"
    edited = "\n".join(lines)
    distinct = [_module(f"Other{i}", 100 + i) for i in range(20)]
    items = [("base", base), ("near", near), ("edited", edited)] + [
        (f"d{i}", t) for i, t in enumerate(distinct)
    ]
    sigs = [(k, dedup.signature(t)) for k, t in items]
    dupes = dedup.near_duplicates(sigs, threshold=0.7)
    assert set(dupes) == {"near", "edited"}
    assert dupes["near"] == "base"
    assert dedup.exact_key("a  b\n c") == dedup.exact_key("a b c")


EDGE = '''
defmodule Outer do
  @moduledoc """
  Outer module with nested modules, guards and multi-clause functions.
  """

  defmodule Inner.Deep do
    @moduledoc "Deeply nested."

    @doc """
    Classifies a number by sign, with guards on every clause.

        iex> Outer.Inner.Deep.sign(-2)
        :negative
        iex> Outer.Inner.Deep.sign(0)
        :zero
    """
    @spec sign(number()) :: :negative | :zero | :positive
    def sign(n) when n < 0, do: :negative
    def sign(0), do: :zero
    def sign(n) when n > 0, do: :positive
  end

  @doc """
  Builds a quoted expression that adds one, used by macros elsewhere.
  """
  defmacro plus_one(x) do
    quote do
      unquote(x) + 1
    end
  end

  @doc """
  Returns a regex sigil and a word list sigil, untouched.
  """
  def sigils, do: {~r/[a-z]+/i, ~w(a b c)a}

  @doc """
  Counts the graphemes of a name with unicode identifiers inside.
  """
  def compte(nom) do
    résultat = String.graphemes(nom)
    length(résultat)
  end
end
'''


def test_samples_from_edge_cases():
    data = EDGE.encode()
    drafts = draft_samples(
        analyze(data),
        data,
        sha="x",
        tasks=["doc_to_impl", "impl_to_doc", "doctest_to_fn", "explain"],
        max_code_chars=4000,
    )
    drafts = select(drafts, 100, "k")
    by_task: dict[str, list[dict]] = {}
    for s in drafts.samples:
        check_messages(s["messages"])
        by_task.setdefault(s["task"], []).append(s)
    impls = [s["messages"][2]["content"] for s in by_task["doc_to_impl"]]
    sign = next(c for c in impls if "sign(n) when n < 0" in c)
    assert sign.count("def sign") == 3  # every clause, guards kept
    assert any("quote do" in c for c in impls)  # the macro's quote block is part of its code
    assert any("~r/[a-z]+/i" in c for c in impls)
    assert any("résultat" in c for c in impls)
    (doctest,) = by_task["doctest_to_fn"]
    assert "iex> Outer.Inner.Deep.sign(-2)" in doctest["messages"][1]["content"]
    assert "Outer.Inner.Deep" in doctest["messages"][1]["content"]
    assert {s["messages"][1]["content"].split("\n")[0] for s in by_task["doc_to_impl"]}  # wording present
    assert drafts.dropped == {}


def test_unparsable_code_is_dropped_and_counted(tmp_path):
    # tree-sitter recovers `f` from the broken paren; its code does not parse, so it is no target
    broken = (
        b'defmodule B do\n  @doc "Adds one to a number, documented."\n  def f(x) do\n    x + (1\n  end\n\n'
        b'  @doc "Second function documented here."\n  def g(y), do: y\nend\n'
    )
    drafts = select(
        draft_samples(analyze(broken), broken, sha="y", tasks=["doc_to_impl"], max_code_chars=4000), 9, ""
    )
    assert [s["messages"][2]["content"] for s in drafts.samples] == ["```elixir\ndef g(y), do: y\n```"]
    assert drafts.dropped == {"unparsable": 1}
    # in the pipeline a file with syntax errors gives no samples at all (recovered spans can swallow
    # their neighbours) but its text is still stage-1 data
    path = tmp_path / "b.ex"
    path.write_bytes(broken.replace(b"(1", b"1") + b"# padding so that the file is not tiny\n" * 2)
    item = {"abspath": str(path), "path": "lib/b.ex"}
    result = process_file(item, CorpusConfig())
    assert result["status"] == "kept" and result["parse_errors"] is False and result["samples"]
    path.write_bytes(broken.replace(b"x + (1\n  end", b"x + 1\n"))
    result = process_file(item, CorpusConfig())
    assert (
        result["status"] == "kept" and result["samples"] == [] and result["dropped"] == {"unparsable_file": 1}
    )


def test_wording_varies_across_functions():
    src = (
        "defmodule W do\n"
        + "".join(
            f'  @doc "Returns the number {i} for the caller, always."\n  def n{i}, do: {i}\n'
            for i in range(30)
        )
        + "end\n"
    )
    data = src.encode()
    drafts = draft_samples(analyze(data), data, sha="z", tasks=["doc_to_impl"], max_code_chars=4000)
    openings = {s["messages"][1]["content"].split("`")[0] for s in drafts.samples}
    assert len(drafts.samples) == 30 and len(openings) >= 3


def test_doctest_examples_keep_results():
    doc = "Sums.\n\n    iex> A.sum([1, 2])\n    3\n\nMore text.\n\n    iex> A.sum([])\n    0\n"
    assert doctest_examples(doc) == "iex> A.sum([1, 2])\n3\n\niex> A.sum([])\n0"


def test_split_is_by_project_and_stable():
    from corpus.assemble import _with_neighbours, split_of
    from corpus.config import SplitConfig

    cfg = CorpusConfig(split=SplitConfig(validation_projects=["mix"], validation_fraction=0.3))
    assert split_of("debian:elixir-lang/mix", cfg) == "validation"
    projects = [f"hex:pkg{i}" for i in range(400)]
    first = [split_of(p, cfg) for p in projects]
    assert first == [split_of(p, cfg) for p in projects]  # stable across calls (and runs: sha256)
    assert 0.2 < first.count("validation") / len(first) < 0.4
    files = [{"project": "p", "path": f"lib/{n}.ex", "text": n} for n in ("a", "b", "c")]
    assert _with_neighbours(files, 0) == ["a", "b", "c"]
    assert _with_neighbours(files, 1)[2] == "# lib/b.ex\nb\n# lib/c.ex\nc"


def test_half_the_samples_use_the_served_prompts():
    from potion import task_prompts

    src = (
        "defmodule W do\n"
        + "".join(
            f'  @doc "Returns the number {i} for the caller, always."\n  @spec n{i}() :: integer()\n'
            f"  def n{i}, do: {i}\n"
            for i in range(40)
        )
        + "end\n"
    )
    data = src.encode()
    drafts = draft_samples(
        analyze(data, path="lib/w.ex"),
        data,
        sha="s",
        tasks=["doc_to_impl", "impl_to_doc"],
        max_code_chars=4000,
    )
    assert all(s["messages"][0]["content"] == task_prompts.SYSTEM_PROMPT for s in drafts.samples)
    served_impl = [
        s for s in drafts.samples if "so it does what its @doc and @spec say" in s["messages"][1]["content"]
    ]
    served_doc = [
        s for s in drafts.samples if s["messages"][1]["content"].startswith("Write the `@doc` for `W.")
    ]
    assert 8 <= len(served_impl) <= 32 and 8 <= len(served_doc) <= 32
    s = served_impl[0]
    assert "@spec n" in s["messages"][1]["content"] and "def n" in s["messages"][1]["content"]
    assert s["messages"][2]["content"].startswith("```elixir\ndef n")
    d = served_doc[0]
    assert "(w.ex:" in d["messages"][1]["content"]
    assert d["messages"][2]["content"] == task_prompts.doc_answer(
        d["messages"][2]["content"].split('"""\n')[1].split('\n"""')[0]
    )
