"""Docs index: build from files, save/load, lookups, the shipped stdlib index, `potion docs-index build`."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from potion.cli import main
from potion.elixir.docs import DocsIndex, build_index, load_stdlib_index, stdlib_index_path

LIB = '''\
defmodule MyLib do
  @moduledoc """
  My library.

  Longer text.
  """

  @doc "Adds."
  @spec add(number(), number()) :: number()
  def add(a, b \\\\ 0), do: a + b

  @doc false
  def internal, do: :x

  defp private, do: :p

  @doc "A macro."
  defmacro twice(x), do: quote(do: unquote(x) * 2)

  @deprecated "Use add/2"
  def plus(a, b), do: a + b

  @impl true
  def init(s), do: {:ok, s}
end

defmodule MyLib.Hidden do
  @moduledoc false
  def h, do: 1
end
'''


@pytest.fixture
def lib_tree(tmp_path: Path) -> Path:
    (tmp_path / "lib" / "my_lib").mkdir(parents=True)
    (tmp_path / "lib" / "my_lib.ex").write_text(LIB)
    (tmp_path / "lib" / "my_lib" / "extra.ex").write_text(
        "defmodule MyLib.Extra do\n  def e(x), do: x\nend\n"
    )
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "skipped.ex").write_text("defmodule Skipped do\nend\n")
    (tmp_path / "lib" / "broken.ex").write_bytes(b"defmodule Broken do\n  def ok, do: 1\n  def bad(\xff")
    return tmp_path


def test_build_index_public_api_only(lib_tree: Path) -> None:
    index = build_index([lib_tree])
    assert sorted(index.modules) == ["Broken", "MyLib", "MyLib.Extra"]
    mod = index.module("MyLib")
    assert mod.summary == "My library." and mod.doc.endswith("Longer text.")
    assert [f.label for f in mod.functions] == ["add/2", "twice/1", "plus/2"]
    add = index.function("MyLib", "add", 1)
    assert add is index.function("MyLib", "add", 2) and add.arities == range(1, 3)
    assert add.spec == "add(number(), number()) :: number()" and add.signature == "add(a, b \\\\ 0)"
    assert add.kind == "def" and index.function("MyLib", "twice").kind == "macro"
    assert index.function("MyLib", "plus").deprecated == "Use add/2"
    assert index.function("MyLib", "add", 3) is None and index.function("Nope", "x") is None
    assert index.function("Broken", "ok") is not None


def test_search_and_round_trip(lib_tree: Path, tmp_path: Path) -> None:
    index = build_index([lib_tree / "lib"], source="test")
    assert [f.label for f in index.search("MyLib.a")] == ["add/2"]
    assert [m.name for m in index.search("MyL")] == ["MyLib", "MyLib.Extra"]
    assert [x.name for x in index.search("MyLib.")][:3] == ["add", "twice", "plus"]
    path = index.save(tmp_path / "out" / "index.json.gz")
    again = DocsIndex.load(path)
    assert again.source == "test" and again.to_json() == index.to_json()
    assert index.save(tmp_path / "again.json.gz").read_bytes() == path.read_bytes()  # deterministic
    merged = load_stdlib_index().merge(again)
    assert merged.module("MyLib") and merged.module("Enum")
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(gzip.compress(json.dumps({"format": 99}).encode()))
    with pytest.raises(ValueError, match="format"):
        DocsIndex.load(bad)


def test_shipped_stdlib_index() -> None:
    assert stdlib_index_path().is_file(), (
        "potion/data/elixir_stdlib.json.gz is missing: potion docs-index build"
    )
    index = load_stdlib_index()
    assert index is load_stdlib_index()  # cached
    assert len(index) > 150 and stdlib_index_path().stat().st_size < 2_000_000
    enum_map = index.function("Enum", "map", 2)
    assert enum_map.spec.startswith("map(t, (element -> any)) :: list") and "fun" in enum_map.doc
    assert index.module("GenServer").summary.startswith("A behaviour module")
    assert index.function("Kernel", "if").kind == "macro"
    assert index.function("String", "split", 1) is not None  # default-argument arity
    assert index.module("ExUnit.Case") and index.module("Mix.Project") and index.module("Logger")
    assert index.module("Kernel.Utils") is None  # @moduledoc false


def test_docs_index_build_command(lib_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "built.json.gz"
    assert main(["docs-index", "build", str(lib_tree), "-o", str(out)]) == 0
    assert "3 modules" in capsys.readouterr().out
    assert DocsIndex.load(out).function("MyLib", "add", 2) is not None


def test_docs_index_build_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["docs-index", "build", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
    (tmp_path / "empty").mkdir()
    assert main(["docs-index", "build", str(tmp_path / "empty"), "-o", str(tmp_path / "x.json.gz")]) == 1
    assert "no .ex files" in capsys.readouterr().err
    assert not (tmp_path / "x.json.gz").exists()
    assert main(["docs-index", "build", str(tmp_path), "-o", str(tmp_path / "empty")]) == 2
    assert "is a directory" in capsys.readouterr().err
