"""`evals.report.compare_markdown` and `compare_chart` on hand-made results: the changed-tasks table lists
exactly the tasks whose pass rate moved, regressions first, with both statuses; no elixir needed."""

from __future__ import annotations

from pathlib import Path

from evals.metrics import summarize_tasks
from evals.report import compare_chart, compare_markdown

CATEGORY = {"kept": "arith", "lost": "arith", "gained": "strings", "failing": "strings"}


def _result(model: str, statuses: dict[str, list[str]]) -> dict:
    rows = [
        {"task": task, "category": CATEGORY[task], "sample": i, "status": status, "seconds": 0.1}
        for task, samples in statuses.items()
        for i, status in enumerate(samples)
    ]
    settings = {"samples": 2, "temperature": 0.8, "max_tokens": 64, "ks": [1, 2]}
    return {
        "suite": "tiny",
        "model": model,
        "settings": settings,
        "commit": "abc1234",
        "summary": summarize_tasks(rows, (1, 2)),
        "rows": rows,
    }


BASE = _result(
    "base.gguf",
    {
        "kept": ["pass", "pass"],
        "lost": ["pass", "pass"],
        "gained": ["assertion_failure", "pass"],
        "failing": ["assertion_failure", "assertion_failure"],
    },
)
TUNED = _result(
    "tuned.gguf",
    {
        "kept": ["pass", "pass"],
        "lost": ["compile_error", "pass"],
        "gained": ["pass", "pass"],
        "failing": ["runtime_error", "timeout"],  # another failure, the same pass rate: not a change
    },
)


def _section(markdown: str, title: str) -> list[str]:
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    return [line for line in lines[start + 1 : end] if line]


def test_compare_lists_exactly_the_tasks_whose_pass_rate_moved() -> None:
    report = compare_markdown(BASE, TUNED, "report.png")
    assert report.startswith("# tiny: base.gguf (base) vs tuned.gguf (tuned)\n")
    assert "Measured at commit abc1234" in report
    assert _section(report, "## Tasks that changed") == [
        "| task | base | tuned |",
        "|---|---|---|",
        "| lost | pass (100.0%) | compile_error (50.0%) |",
        "| gained | assertion_failure (50.0%) | pass (100.0%) |",
    ]
    assert "## Tasks that changed (2)" in report
    assert "No task changed." not in report


def test_compare_summary_and_categories() -> None:
    report = compare_markdown(BASE, TUNED, "report.png")
    # pass@1 per task: base 1, 1, 0.5, 0 -> 62.5%; tuned 1, 0.5, 1, 0 -> 62.5%.
    # pass@2 per task: base 1, 1, 1, 0 -> 75%; tuned the same.
    assert "| pass@1 | 62.5% | 62.5% | +0.0 pts |" in report
    assert "| pass@2 | 75.0% | 75.0% | +0.0 pts |" in report
    assert "| compile_rate | 100.0% | 87.5% | -12.5 pts |" in report
    assert "| pass | 62.5% | 62.5% | +0.0 pts |" in report
    assert "| assertion_failure | 37.5% | 0.0% | -37.5 pts |" in report
    assert "| runtime_error | 0.0% | 12.5% | +12.5 pts |" in report
    assert "![pass rate per category](report.png)" in report
    assert _section(report, "## Per category")[2:] == [
        "| arith | 100.0% | 75.0% | -25.0 pts |",
        "| strings | 25.0% | 50.0% | +25.0 pts |",
    ]


def test_compare_of_equal_results_says_no_task_changed() -> None:
    report = compare_markdown(BASE, BASE)
    assert _section(report, "## Tasks that changed") == ["No task changed."]
    assert "![" not in report


def test_compare_chart_writes_a_png(tmp_path: Path) -> None:
    path = compare_chart(BASE, TUNED, tmp_path / "report.png")
    assert path == tmp_path / "report.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
