"""Metrics: HumanEval's unbiased pass@k, outcome rates per category, edit similarity for infills."""

from __future__ import annotations

import difflib
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from evals.sandbox import OUTCOMES


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimator of HumanEval (Chen et al. 2021): 1 - C(n-c, k) / C(n, k), as a stable
    product. `n` samples of which `c` passed; needs k <= n."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per task, got {n}")
    if n - c < k:
        return 1.0
    result = 1.0
    for i in range(n - c + 1, n + 1):
        result *= 1.0 - k / i
    return 1.0 - result


def edit_similarity(a: str, b: str) -> float:
    """1.0 for equal strings, 0.0 for nothing in common (difflib's ratio: 2 * matches / total length,
    the measure CrossCodeEval and the infilling benchmarks report)."""
    if not a and not b:
        return 1.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def exact_match(prediction: str, target: str) -> bool:
    """Equal up to whitespace at the ends of lines and of the text."""

    def norm(s: str) -> str:
        return "\n".join(line.rstrip() for line in s.strip().split("\n"))

    return norm(prediction) == norm(target)


def summarize_tasks(rows: Sequence[dict], ks: Iterable[int]) -> dict:
    """Suite metrics from per-sample rows {task, category, status, seconds}: pass@k averaged over tasks,
    compile rate (share of samples without a compile error), outcome shares, and a per-category table."""
    by_task: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_task[row["task"]].append(row)
    ks = [k for k in ks if all(len(v) >= k for v in by_task.values())]

    def block(tasks: dict[str, list[dict]]) -> dict:
        samples = [r for v in tasks.values() for r in v]
        counts = Counter(r["status"] for r in samples)
        out = {
            "tasks": len(tasks),
            "samples": len(samples),
            "compile_rate": 1 - counts["compile_error"] / len(samples) if samples else 0.0,
            "outcomes": {o: counts[o] / len(samples) if samples else 0.0 for o in OUTCOMES},
        }
        for k in ks:
            scores = [pass_at_k(len(v), sum(r["status"] == "pass" for r in v), k) for v in tasks.values()]
            out[f"pass@{k}"] = statistics.fmean(scores) if scores else 0.0
        return out

    summary = block(by_task)
    categories: dict[str, dict[str, list[dict]]] = defaultdict(dict)
    for task, samples in by_task.items():
        categories[samples[0].get("category", "uncategorized")][task] = samples
    summary["categories"] = {c: block(t) for c, t in sorted(categories.items())}
    seconds = [r["seconds"] for r in rows if r.get("seconds") is not None]
    gen = [r["gen_seconds"] for r in rows if r.get("gen_seconds") is not None]
    summary["seconds_per_sample"] = statistics.fmean(seconds) if seconds else 0.0
    summary["generation_seconds_per_sample"] = statistics.fmean(gen) if gen else 0.0
    return summary
