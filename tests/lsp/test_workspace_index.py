"""The workspace index: workspace files, deps, open buffers and stdlib docs, merged by module."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp.workspace_index import WorkspaceIndex
from potion.elixir.docs import build_index

WORKER = """defmodule MyApp.Worker do
  @moduledoc "Does the work."

  @doc "Runs a job."
  @spec run(term) :: :ok
  def run(job), do: job && :ok

  def retry(job, times \\\\ 3), do: {job, times}

  @doc false
  def internal, do: :hidden

  defp secret, do: :s
end
"""
DEP = """defmodule Jason do
  @doc "Encodes."
  def encode(value, opts \\\\ []), do: {value, opts}
end
"""


def make_project(root: Path) -> Path:
    (root / "lib" / "my_app").mkdir(parents=True)
    (root / "lib" / "my_app" / "worker.ex").write_text(WORKER)
    (root / "deps" / "jason" / "lib").mkdir(parents=True)
    (root / "deps" / "jason" / "lib" / "jason.ex").write_text(DEP)
    # A dependency's tests and the build folder are never indexed.
    (root / "deps" / "jason" / "test").mkdir()
    (root / "deps" / "jason" / "test" / "jason_test.exs").write_text("defmodule JasonTest do\nend\n")
    (root / "_build" / "dev").mkdir(parents=True)
    (root / "_build" / "dev" / "junk.ex").write_text("defmodule Junk do\nend\n")
    return root


def test_scan_indexes_workspace_and_deps_lib_only(tmp_path: Path) -> None:
    index = WorkspaceIndex([make_project(tmp_path)], stdlib=False)
    assert index.scan() == 2
    assert index.scanned.is_set()
    assert index.module_names("") == ["Jason", "MyApp.Worker"]
    worker = index.module("MyApp.Worker")
    assert worker is not None and worker.moduledoc == "Does the work." and worker.source == "workspace"
    assert index.module("Jason").source == "deps"
    # Public, documented functions only; `@doc false` and private ones are not offered.
    assert [f.label for f in index.functions("MyApp.Worker")] == ["retry/1..2", "run/1"]
    run = index.function("MyApp.Worker", "run")[0]
    assert (run.spec, run.doc, run.signature, run.line) == ("run(term) :: :ok", "Runs a job.", "run(job)", 5)
    assert index.function("MyApp.Worker", "retry", 1) and index.function("MyApp.Worker", "retry", 2)
    assert index.function("MyApp.Worker", "retry", 4) == []
    assert [f.name for f in index.functions("MyApp.Worker", public_only=False)] == [
        "internal",
        "retry",
        "run",
        "secret",
    ]


def test_open_buffer_replaces_its_file_and_reanalyses_lazily(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    index = WorkspaceIndex([root], stdlib=False)
    index.scan()
    path = root / "lib" / "my_app" / "worker.ex"
    text = {"now": WORKER.replace("def retry", "def again")}
    reads = []

    def current() -> str:
        reads.append(1)
        return text["now"]

    index.open_document(path.as_uri(), current)
    assert [f.name for f in index.functions("MyApp.Worker")] == ["again", "run"]
    assert index.module("MyApp.Worker").source == "open"
    first = index.analysis(path.as_uri())
    assert index.analysis(path.as_uri()) is first  # unchanged buffer: no second parse
    text["now"] = "defmodule MyApp.Worker do\n  def only, do: 1\nend\n"
    before = len(reads)
    index.changed(path.as_uri())
    assert len(reads) == before  # a change only marks the buffer dirty
    assert [f.name for f in index.functions("MyApp.Worker")] == ["only"]
    assert index.analysis(path.as_uri()) is not first
    # Closing the buffer goes back to what is on disk.
    index.close_document(path.as_uri())
    assert [f.name for f in index.functions("MyApp.Worker")] == ["retry", "run"]


def test_buffer_with_syntax_errors_still_lists_what_parsed(tmp_path: Path) -> None:
    index = WorkspaceIndex(stdlib=False)
    index.open_document(
        "file:///x/broken.ex", lambda: "defmodule Broken do\n  def ok(a), do: a\n  def half(\n"
    )
    assert "ok" in [f.name for f in index.functions("Broken")]


def test_stdlib_fills_in_modules_the_workspace_lacks(tmp_path: Path) -> None:
    src = tmp_path / "stdlib"
    src.mkdir()
    (src / "enum.ex").write_text(
        'defmodule Enum do\n  @moduledoc "Enumerables."\n  @doc "Maps."\n'
        "  @spec map(t, fun) :: list\n  def map(enumerable, fun), do: {enumerable, fun}\n"
        '  @doc "Guard-ish."\n  defmacro is_thing(x), do: x\nend\n'
    )
    stdlib = build_index([src])
    index = WorkspaceIndex([make_project(tmp_path / "proj")], stdlib=stdlib)
    index.scan()
    assert index.module("Enum").moduledoc == "Enumerables."
    assert index.module("Enum").source == "stdlib"
    map_fn = index.function("Enum", "map", 2)[0]
    assert (map_fn.spec, map_fn.doc, map_fn.source, map_fn.label) == (
        "map(t, fun) :: list",
        "Maps.",
        "stdlib",
        "map/2",
    )
    assert index.function("Enum", "is_thing")[0].kind == "defmacro"
    assert index.module_names("E") == ["Enum"]
    assert index.module_names("MyApp") == ["MyApp.Worker"]


def test_shipped_stdlib_index_is_used_by_default() -> None:
    index = WorkspaceIndex()
    if not index.function("Enum", "map"):
        pytest.skip("the stdlib docs index is not built in this checkout")
    assert "GenServer" in index.module_names("Gen")
    assert index.function("Enum", "map", 2)[0].spec


def test_unreadable_and_huge_files_are_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lsp.workspace_index as wi

    root = make_project(tmp_path)
    (root / "lib" / "big.ex").write_text("defmodule Big do\nend\n" + "# x\n" * 400)
    monkeypatch.setattr(wi, "MAX_FILE_BYTES", 1000)
    index = WorkspaceIndex([root], stdlib=False)
    index.scan()
    assert index.module("Big") is None and index.module("MyApp.Worker") is not None
    # A file that vanished after the scan is dropped on reload, not an error.
    (root / "lib" / "my_app" / "worker.ex").unlink()
    index.reload_file(root / "lib" / "my_app" / "worker.ex")
    assert index.module("MyApp.Worker") is None


def test_background_scan_sets_scanned(tmp_path: Path) -> None:
    index = WorkspaceIndex([make_project(tmp_path)], stdlib=False)
    index.scan_in_background()
    index.scan_in_background()  # idempotent
    assert index.scanned.wait(10)
    assert index.module("Jason") is not None


def test_text_change_finds_the_single_edit() -> None:
    from lsp.open_buffers import text_change

    assert text_change("abcdef", "abXYef") == (2, 4, "XY")
    assert text_change("abc", "abc") == (3, 3, "")
    assert text_change("", "new") == (0, 0, "new")
    assert text_change("aaaa", "aaaaa") == (4, 4, "a")
    assert text_change("héllo 🧪 x", "héllo 🧪🧪 x") == (7, 7, "🧪")


def test_incremental_reparse_matches_a_fresh_parse() -> None:
    """Keystrokes applied through diffs give the same modules and functions as parsing from scratch."""
    import random

    from potion.elixir import analyze

    rng = random.Random(4)
    text = {"now": WORKER}
    index = WorkspaceIndex(stdlib=False)
    index.open_document("file:///w.ex", lambda: text["now"])
    snippets = ["\n  def added(x), do: x\n", "é", "🧪", "end\n", "defp ", "\n", "  ", '"', "#"]
    for _ in range(60):
        current = text["now"]
        at = rng.randrange(len(current) + 1)
        if rng.random() < 0.3 and at < len(current):
            text["now"] = current[:at] + current[at + rng.randint(1, 5) :]
        else:
            text["now"] = current[:at] + rng.choice(snippets) + current[at:]
        index.changed("file:///w.ex")
        got = index.analysis("file:///w.ex")
        want = analyze(text["now"])
        assert [(m.name, [(f.name, tuple(f.arities)) for f in m.functions]) for m in got.modules] == [
            (m.name, [(f.name, tuple(f.arities)) for f in m.functions]) for m in want.modules
        ]


def test_big_buffers_answer_stale_while_reparsing(monkeypatch: pytest.MonkeyPatch) -> None:
    import lsp.workspace_index as wi

    monkeypatch.setattr(wi, "STALE_OK_CHARS", 10)
    text = {"now": "defmodule Big do\n  def one, do: 1\nend\n"}
    index = WorkspaceIndex(stdlib=False)
    index.open_document("file:///big.ex", lambda: text["now"])
    assert [f.name for f in index.analysis("file:///big.ex").modules[0].functions] == ["one"]
    text["now"] = text["now"].replace("one", "two")
    index.changed("file:///big.ex")
    stale = index.analysis("file:///big.ex", stale_ok=True)
    assert [f.name for f in stale.modules[0].functions] == ["one"]  # at once, one edit behind
    # The background re-parse catches up; a fresh query always sees the new text.
    assert [f.name for f in index.analysis("file:///big.ex").modules[0].functions] == ["two"]


def test_first_parse_of_a_huge_buffer_does_not_block_completion(monkeypatch: pytest.MonkeyPatch) -> None:
    import lsp.workspace_index as wi

    monkeypatch.setattr(wi, "STALE_OK_CHARS", 10)
    index = WorkspaceIndex(stdlib=False)
    index.open_document("file:///huge.ex", lambda: WORKER)
    assert index.analysis("file:///huge.ex", stale_ok=True) is None  # parsing started, not awaited
    assert index.analysis("file:///huge.ex").modules[0].name == "MyApp.Worker"


def test_the_index_follows_document_events_and_files_changed_outside(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj")
    texts: dict[str, str] = {}
    index = WorkspaceIndex(stdlib=False, text_of=texts.__getitem__)
    index.start([root, tmp_path / "gone"])  # a folder that does not exist is left out
    assert index.scanned.wait(10) and index.roots == [root]
    uri = (root / "lib" / "my_app" / "worker.ex").as_uri()
    texts[uri] = WORKER.replace("def run(job)", "def run_now(job)")
    index.document_event("open", uri)  # the unsaved buffer replaces the file on disk
    assert [f.name for f in index.functions("MyApp.Worker")] == ["retry", "run_now"]
    texts[uri] = WORKER.replace("def run(job)", "def run_later(job)")
    index.document_event("change", uri)
    index.file_changed(uri, deleted=True)  # an open buffer is the truth until it is closed
    assert [f.name for f in index.functions("MyApp.Worker")] == ["retry", "run_later"]
    index.document_event("close", uri)  # back to the file on disk
    assert [f.name for f in index.functions("MyApp.Worker")] == ["retry", "run"]
    fresh = root / "lib" / "fresh.ex"
    fresh.write_text("defmodule MyApp.Fresh do\n  def hello, do: :hi\nend\n")
    index.file_changed(fresh.as_uri(), deleted=False)
    assert index.module("MyApp.Fresh") is not None
    fresh.unlink()
    index.file_changed(fresh.as_uri(), deleted=True)
    assert index.module("MyApp.Fresh") is None
    outside = tmp_path / "elsewhere.ex"
    outside.write_text("defmodule Elsewhere do\nend\n")
    index.file_changed(outside.as_uri(), deleted=False)  # not in a workspace folder: not indexed
    assert index.module("Elsewhere") is None


def test_the_server_owns_its_index_and_watches_files_with_hover_off(tmp_path: Path) -> None:
    import dataclasses

    from lsprotocol import types

    from lsp.server import create_server

    root = make_project(tmp_path / "proj")
    server = create_server()
    server.config = dataclasses.replace(server.config, hover=False)
    server.workspace_index.start([root])
    assert server.workspace_index.scanned.wait(10)
    fresh = root / "lib" / "fresh.ex"
    fresh.write_text("defmodule MyApp.Fresh do\nend\n")
    watched = server.protocol.fm.features[types.WORKSPACE_DID_CHANGE_WATCHED_FILES]
    watched(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=fresh.as_uri(), type=types.FileChangeType.Created)]
        )
    )
    assert server.workspace_index.module("MyApp.Fresh") is not None
    server.close()
