"""Shared data of the evaluation tests: two tiny tasks, the elixir skip mark, the fake server on sys.path."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "potion"))  # fakes_openai

needs_elixir = pytest.mark.skipif(shutil.which("elixir") is None, reason="needs elixir on PATH")

SQUARE = {
    "name": "square",
    "language": "ex",
    "category": "arith",
    "prompt": 'defmodule Sq do\n  @doc "x squared"\n  def sq(x) do\n',
    "canonical_solution": "    x * x\n  end\nend\n",
    "tests": (
        "ExUnit.start()\n\ndefmodule SqTest do\n  use ExUnit.Case\n\n"
        '  test "sq" do\n    assert Sq.sq(3) == 9\n  end\nend\n'
    ),
    "stop_tokens": ["\ndefmodule ", "\nExUnit.start"],
    "truncate": "balance",
}
DOUBLE = {
    **SQUARE,
    "name": "double",
    "category": "arith",
    "prompt": 'defmodule Dbl do\n  @doc "2x"\n  def dbl(x) do\n',
    "canonical_solution": "    2 * x\n  end\nend\n",
    "tests": (
        "ExUnit.start()\n\ndefmodule DblTest do\n  use ExUnit.Case\n\n"
        '  test "dbl" do\n    assert Dbl.dbl(3) == 6\n  end\nend\n'
    ),
}
