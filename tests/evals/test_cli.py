"""`potion eval run/compare/fim/perplexity` end to end against a scripted OpenAI-compatible server:
stored results are reused, reports are written, bad input gets one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_helpers import SQUARE, needs_elixir
from fakes_openai import FakeOpenAIServer

from potion.cli import main

pytestmark = [pytest.mark.elixir, needs_elixir]


def test_run_then_compare_reuses_stored_results(
    tiny_suite: Path, tmp_path: Path, potion_home, capsys
) -> None:
    results, out = tmp_path / "results", tmp_path / "report"
    with FakeOpenAIServer([SQUARE["canonical_solution"]], model_id="fake") as server:
        base, tuned = f"{server.url}#base", f"{server.url}#tuned"
        assert (
            main(
                ["eval", "run", str(tiny_suite), "--model", base, "--results", str(results), "--no-progress"]
            )
            == 0
        )
        text = capsys.readouterr().out
        assert "pass@1 50.0%" in text and "| arith | 2 |" in text
        generations = len(server.bodies("/v1/completions"))
        assert generations == 2
        args = [
            "eval",
            "compare",
            base,
            tuned,
            "--suite",
            str(tiny_suite),
            "--results",
            str(results),
            "--out",
            str(out),
            "--no-progress",
        ]
        assert main(args) == 0
        assert len(server.bodies("/v1/completions")) == 4  # base was stored: only tuned ran
        assert main(args) == 0
        assert len(server.bodies("/v1/completions")) == 4  # the second compare re-runs nothing
    report = (out / "report.md").read_text()
    assert "| pass@1 | 50.0% | 50.0% | +0.0 pts |" in report and "No task changed." in report
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    stored = list((results / "suite-tiny").glob("*.json"))
    assert len(stored) == 2
    rows = json.loads(stored[0].read_text())["rows"]
    assert {r["status"] for r in rows} == {"pass", "assertion_failure"}


def _one_function_task(name: str, module: str, category: str, expected: str) -> dict:
    return {
        **SQUARE,
        "name": name,
        "category": category,
        "prompt": f'defmodule {module} do\n  @doc "{name}"\n  def f(x) do\n',
        "tests": (
            f"ExUnit.start()\n\ndefmodule {module}Test do\n  use ExUnit.Case\n\n"
            f'  test "{name}" do\n    assert {module}.f(3) == {expected}\n  end\nend\n'
        ),
    }


# One body for every task: it answers by module, so one scripted server passes the tasks it knows.
# Base knows Sq and Neg (others get 0: assertion failures); tuned knows Dbl, Tri and Neg, and Sq raises
# (Map.fetch!: a runtime error).
BASE_ANSWER = "    Map.get(%{Sq => x * x, Neg => -x}, __MODULE__, 0)\n  end\nend\n"
TUNED_ANSWER = "    Map.fetch!(%{Dbl => 2 * x, Tri => 3 * x, Neg => -x}, __MODULE__)\n  end\nend\n"


def test_compare_reports_the_tasks_that_changed_and_which_way(tmp_path: Path, potion_home, capsys) -> None:
    suite = tmp_path / "four.jsonl"
    tasks = [
        _one_function_task("square", "Sq", "arith", "9"),
        _one_function_task("double", "Dbl", "arith", "6"),
        _one_function_task("triple", "Tri", "arith", "9"),
        _one_function_task("negate", "Neg", "sign", "-3"),
    ]
    suite.write_text("\n".join(json.dumps(t) for t in tasks) + "\n")
    out = tmp_path / "report"
    with (
        FakeOpenAIServer([BASE_ANSWER], model_id="base") as base,
        FakeOpenAIServer([TUNED_ANSWER], model_id="tuned") as tuned,
    ):
        args = ["eval", "compare", base.url, tuned.url, "--suite", str(suite)]
        args += ["--results", str(tmp_path / "results"), "--out", str(out), "--no-progress"]
        assert main(args) == 0
        assert len(base.bodies("/v1/completions")) == len(tuned.bodies("/v1/completions")) == 4
    report = (out / "report.md").read_text()
    assert report == capsys.readouterr().out.rstrip("\n") + "\n"  # printed as written
    lines = report.splitlines()
    changed = lines[lines.index("## Tasks that changed (3)") + 1 :]
    # Regressions first, then gains, each group by name; negate passes on both sides and is not listed.
    assert [line for line in changed if line] == [
        "| task | base | tuned |",
        "|---|---|---|",
        "| square | pass (100.0%) | runtime_error (0.0%) |",
        "| double | assertion_failure (0.0%) | pass (100.0%) |",
        "| triple | assertion_failure (0.0%) | pass (100.0%) |",
    ]
    assert "| pass@1 | 50.0% | 75.0% | +25.0 pts |" in report
    assert "| assertion_failure | 50.0% | 0.0% | -50.0 pts |" in report
    assert "| runtime_error | 0.0% | 25.0% | +25.0 pts |" in report
    assert "| arith | 33.3% | 66.7% | +33.3 pts |" in report
    assert "| sign | 100.0% | 100.0% | +0.0 pts |" in report
    assert "![pass rate per category](report.png)" in report
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_model_that_cannot_load_says_which_and_why(
    tiny_suite: Path, tmp_path: Path, potion_home, capsys
) -> None:
    missing = tmp_path / "gone.gguf"
    assert main(["eval", "run", str(tiny_suite), "--model", str(missing), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"model '{missing}' cannot load: no model named '{missing}'" in err[0]
    assert "no such file" in err[0] and "the path of a .gguf file" in err[0]  # why, and the fix

    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("these are notes, not weights\n")
    assert main(["eval", "run", str(tiny_suite), "--model", str(not_gguf), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"model '{not_gguf}' cannot load: " in err[0]
    assert "not a GGUF" in err[0]


def test_malformed_task_file_and_bad_flags(tmp_path: Path, potion_home, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(SQUARE) + "\n{oops\n")
    assert main(["eval", "run", str(bad), "--no-progress"]) == 1
    assert f"{bad}:2: not valid JSON" in capsys.readouterr().err
    assert main(["eval", "run", str(bad), "--samples", "0"]) == 2
    assert "--samples" in capsys.readouterr().err
    assert main(["eval", "fim", "--ablate", "nonsense"]) == 2
    assert "--ablate" in capsys.readouterr().err


def test_perplexity_needs_llama_cpp(tmp_path: Path, potion_home, capsys) -> None:
    (tmp_path / "a.ex").write_text("defmodule A do\nend\n")
    with FakeOpenAIServer(["x"]) as server:
        assert main(["eval", "perplexity", str(tmp_path), "--model", server.url, "--no-progress"]) == 1
    assert "in-process llama.cpp" in capsys.readouterr().err
