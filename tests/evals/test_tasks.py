"""Task suites: the MultiPL-E style loader, its errors (naming the line), completion cutting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_helpers import SQUARE

from evals.errors import TaskFileError
from evals.tasks import SUITES_DIR, load_suite, load_tasks

REQUIRED_CATEGORIES = {
    "enum_pipelines",
    "pattern_matching",
    "recursion",
    "binaries_strings",
    "maps_structs",
    "protocols",
    "error_tuples_with",
    "genserver",
    "agent",
    "task",
    "supervisor",
    "registry",
}


def test_the_projects_suite_has_60_tasks_over_every_category() -> None:
    suite = load_suite("elixir")
    assert len(suite.tasks) >= 60
    assert REQUIRED_CATEGORIES <= set(suite.categories())
    for task in suite.tasks:
        assert task.canonical_solution and "ExUnit.start()" in task.tests and task.stop_tokens
    # every field the corpus decontaminates against is a string (or a list of strings)
    for line in (SUITES_DIR / "elixir.jsonl").read_text().splitlines():
        row = json.loads(line)
        assert {"name", "prompt", "tests", "canonical_solution", "stop_tokens", "category"} <= row.keys()


def test_multipl_e_row_loads_with_its_own_fields(tmp_path: Path) -> None:
    row = {
        "name": "HumanEval_0",
        "language": "ex",
        "prompt": "p",
        "tests": "t",
        "stop_tokens": ["\n\n"],
        "doctests": "transform",
        "original": "x.py",
        "prompt_terminology": "reworded",
    }
    path = tmp_path / "he.jsonl"
    path.write_text(json.dumps(row) + "\n")
    (task,) = load_tasks(path)
    assert task.name == "HumanEval_0" and task.truncate == "stop" and task.category == "uncategorized"
    assert task.program("c") == "pc\nt"


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("{not json", "not valid JSON"),
        ('{"name": "a", "prompt": "p", "tests": "t"}', "'stop_tokens'"),
        ('{"name": "a", "prompt": "p", "tests": "t", "stop_tokens": "x"}', "stop_tokens"),
        ('{"name": "a", "prompt": "p", "tests": "t", "stop_tokens": [], "language": "py"}', "not Elixir"),
        ('["a"]', "JSON object"),
    ],
)
def test_malformed_task_file_names_the_line(tmp_path: Path, line: str, needle: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(SQUARE) + "\n\n" + line + "\n")
    with pytest.raises(TaskFileError, match=needle) as info:
        load_tasks(path)
    assert f"{path}:3" in info.value.message


def test_duplicate_names_and_unknown_suites(tmp_path: Path) -> None:
    path = tmp_path / "dup.jsonl"
    path.write_text(json.dumps(SQUARE) + "\n" + json.dumps(SQUARE) + "\n")
    with pytest.raises(TaskFileError, match="duplicate task name 'square' .first on line 1"):
        load_tasks(path)
    with pytest.raises(TaskFileError, match="no task suite 'no-such-suite'") as info:
        load_suite("no-such-suite")
    assert "elixir" in info.value.hint


def test_cut_stops_at_stop_tokens_and_where_the_module_closes(tiny_suite: Path) -> None:
    square = load_tasks(tiny_suite)[0]
    raw = "    x * x\n  end\nend\n\nIO.puts(Sq.sq(2))\ndefmodule Other do\nend\n"
    assert square.cut(raw) == "    x * x\n  end\nend"
    interpolated = '    "#{x}" <> "#{x}"\n  end\nend\nmore()\n'
    assert square.cut(interpolated) == '    "#{x}" <> "#{x}"\n  end\nend'
    stop_only = load_tasks(tiny_suite)[0].__class__(**{**square.__dict__, "truncate": "stop"})
    assert stop_only.cut(raw) == "    x * x\n  end\nend\n\nIO.puts(Sq.sq(2))"
    assert square.empty_completion() == "  end\nend\n"
