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


def test_a_model_that_cannot_load_says_which_and_why(
    tiny_suite: Path, tmp_path: Path, potion_home, capsys
) -> None:
    missing = tmp_path / "gone.gguf"
    assert main(["eval", "run", str(tiny_suite), "--model", str(missing), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"model '{missing}' cannot load" in err[0]


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
