"""pass@k (HumanEval's unbiased estimator), edit similarity, exact match, suite summaries."""

from __future__ import annotations

import math

import pytest

from evals.metrics import edit_similarity, exact_match, pass_at_k, summarize_tasks


def test_pass_at_k_matches_the_closed_form() -> None:
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - math.comb(7, 5) / math.comb(10, 5))
    assert pass_at_k(4, 0, 2) == 0.0 and pass_at_k(4, 3, 2) == 1.0
    with pytest.raises(ValueError, match="pass@3"):
        pass_at_k(2, 1, 3)


def test_edit_similarity_and_exact_match() -> None:
    assert edit_similarity("abc", "abc") == 1.0 and edit_similarity("", "") == 1.0
    assert edit_similarity("abcd", "wxyz") == 0.0
    assert 0.5 < edit_similarity("Enum.map(xs, f)", "Enum.map(ys, f)") < 1.0
    assert exact_match("x = 1  \n", "x = 1") and not exact_match("x = 2", "x = 1")


def test_summary_per_category_with_compile_rate() -> None:
    rows = [
        {"task": "a", "category": "c1", "status": "pass", "seconds": 1.0},
        {"task": "a", "category": "c1", "status": "compile_error", "seconds": 1.0},
        {"task": "b", "category": "c2", "status": "assertion_failure", "seconds": 3.0},
        {"task": "b", "category": "c2", "status": "pass", "seconds": 3.0},
    ]
    s = summarize_tasks(rows, ks=[1, 2])
    assert s["pass@1"] == pytest.approx(0.5) and s["pass@2"] == pytest.approx(1.0)
    assert s["compile_rate"] == pytest.approx(0.75) and s["seconds_per_sample"] == pytest.approx(2.0)
    assert s["categories"]["c1"]["outcomes"]["compile_error"] == pytest.approx(0.5)
    assert summarize_tasks(rows, ks=[1, 3]).keys() >= {"pass@1"} and "pass@3" not in summarize_tasks(
        rows, ks=[3]
    )
