"""potion.elixir against Elixir itself: public name/arity per module must match `Code.string_to_quoted`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import PUBLIC_DEFS

from potion.elixir import analyze

pytestmark = pytest.mark.elixir


def elixir_public_defs(files: list[Path]) -> dict[str, set[tuple[str, int]]]:
    """Run scripts/public_defs.exs once over all files (elixir start-up is slow)."""
    out = subprocess.run(
        ["elixir", str(PUBLIC_DEFS), *map(str, files)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    defs: dict[str, set[tuple[str, int]]] = {}
    for line in out.splitlines():
        kind, *rest = line.split("\t")
        if kind == "M":
            defs.setdefault(rest[0], set())
        elif kind == "F":
            defs.setdefault(rest[0], set()).add((rest[1], int(rest[2])))
        elif kind == "E":
            raise AssertionError(f"elixir could not parse {rest}")
    return defs


def ours(files: list[Path]) -> dict[str, set[tuple[str, int]]]:
    defs: dict[str, set[tuple[str, int]]] = {}
    for f in files:
        for mod, arities in analyze(f.read_bytes(), path=str(f)).public_arities().items():
            defs.setdefault(mod, set()).update(arities)
    return defs


def agreement(truth: dict, mine: dict) -> tuple[float, list[str]]:
    modules = sorted(set(truth) | set(mine))
    bad = [m for m in modules if truth.get(m) != mine.get(m)]
    return 1 - len(bad) / len(modules), bad


TRICKY = """\
defmodule Tricky do
  def plain(a), do: a
  def defaults(a, b \\\\ 1, c \\\\ 2), do: {a, b, c}
  def guarded(x) when is_integer(x) when x > 0, do: x
  def no_parens, do: :ok
  def left ~>> right, do: {left, right}
  def -value, do: value
  defmacro first..last//step, do: {first, last, step}
  defguard is_ok(x) when x == :ok
  defdelegate size(map), to: Kernel, as: :map_size
  defp private(x), do: x
  defmacrop private_macro(x), do: x
  def unquote(:dynamic)(x), do: x
  if true do
    def in_if(x), do: x
  end
  defmacro __using__(_) do
    quote do
      def injected, do: 1
    end
  end
  defmodule Inner.Deeper do
    def deep, do: 1
  end
  defprotocol Proto do
    def p(x)
  end
  defimpl Proto, for: [Atom, Integer] do
    def p(x), do: x
  end
end
defimpl String.Chars, for: Tricky do
  def to_string(_), do: "tricky"
end
"""


def test_tricky_constructs_match_elixir_exactly(elixir_bin: str, tmp_path: Path) -> None:
    path = tmp_path / "tricky.ex"
    path.write_text(TRICKY)
    truth, mine = elixir_public_defs([path]), ours([path])
    assert mine == truth
    assert ("..//", 3) in mine["Tricky"] and ("defaults", 1) in mine["Tricky"]
    assert "Tricky.Proto.Atom" in mine and "String.Chars.Tricky" in mine


def test_stdlib_public_defs_agree_with_elixir(elixir_bin: str, elixir_stdlib: list[Path]) -> None:
    truth, mine = elixir_public_defs(elixir_stdlib), ours(elixir_stdlib)
    rate, bad = agreement(truth, mine)
    print(f"\ndefs agreement with elixir on {len(truth)} stdlib modules: {rate:.4f} (mismatches: {bad[:10]})")
    assert len(truth) > 300
    assert rate >= 0.95
