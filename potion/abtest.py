"""A/B comparison of two models from their suggestions: acceptance, latency and timeouts.

Pure functions over counts and latencies (the language server's telemetry feeds them). Each metric gets
the difference candidate − stable with a 95% confidence interval; a difference counts only when its
interval excludes 0.

- Rates (acceptance of shown suggestions, timeouts of generations): Newcombe's hybrid score interval
  (method 10 of Newcombe 1998) built from the two Wilson intervals. It stays inside [-1, 1] and behaves at
  rates near 0 or 1 and small counts, where the textbook Wald interval does not.
- Latency (mean of generations, cache hits left out: they measure the cache, not the model): Welch's t
  interval, unequal variances. The t quantile comes from the Cornish-Fisher expansion in the normal
  quantile (Abramowitz & Stegun 26.7.5), within 1e-3 of the exact value for df >= 5, which is well below
  what an interval over telemetry can resolve; no scipy needed.

Below `MIN_SAMPLES` per model a metric says "not enough data" instead of a verdict.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

MIN_SAMPLES = 30
CONFIDENCE = 0.95


def normal_quantile(p: float) -> float:
    return statistics.NormalDist().inv_cdf(p)


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with `df` degrees of freedom (Cornish-Fisher, see the docstring)."""
    z = normal_quantile(p)
    if df == math.inf or df > 1e7:
        return z
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a proportion; (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    z = normal_quantile(0.5 + confidence / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_difference(
    x_a: int, n_a: int, x_b: int, n_b: int, confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """p_b − p_a with Newcombe's hybrid score interval: (difference, low, high)."""
    p_a = x_a / n_a if n_a else 0.0
    p_b = x_b / n_b if n_b else 0.0
    low_a, high_a = wilson(x_a, n_a, confidence)
    low_b, high_b = wilson(x_b, n_b, confidence)
    diff = p_b - p_a
    low = diff - math.sqrt((p_b - low_b) ** 2 + (high_a - p_a) ** 2)
    high = diff + math.sqrt((high_b - p_b) ** 2 + (p_a - low_a) ** 2)
    return diff, low, high


def mean_difference(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """mean(b) − mean(a) with Welch's t interval: (difference, low, high). Needs 2 values on each side."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError("Welch's interval needs at least 2 values per group")
    mean_a, mean_b = statistics.fmean(a), statistics.fmean(b)
    se2_a = statistics.variance(a) / len(a)
    se2_b = statistics.variance(b) / len(b)
    diff = mean_b - mean_a
    se = math.sqrt(se2_a + se2_b)
    if se == 0:
        return diff, diff, diff
    df = (se2_a + se2_b) ** 2 / (se2_a**2 / (len(a) - 1) + se2_b**2 / (len(b) - 1))
    half = t_quantile(0.5 + confidence / 2, df) * se
    return diff, diff - half, diff + half


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0 for none), as `potion stats` reports it."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


@dataclass
class ModelSample:
    """One model's suggestions: `arm` is "stable" or "canary"; `latencies_ms` of generations only."""

    model: str
    arm: str
    suggestions: int = 0
    shown: int = 0
    accepted: int = 0
    cache_hits: int = 0
    generations: int = 0
    timed_out: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.model or '(unknown model)'} [{self.arm}]"

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.shown if self.shown else 0.0

    @property
    def timeout_rate(self) -> float:
        return self.timed_out / self.generations if self.generations else 0.0

    def latency(self, q: float) -> float:
        return percentile(sorted(self.latencies_ms), q)

    def as_dict(self) -> dict[str, object]:
        ordered = sorted(self.latencies_ms)
        return {
            "model": self.model,
            "arm": self.arm,
            "suggestions": self.suggestions,
            "shown": self.shown,
            "accepted": self.accepted,
            "acceptance_rate": round(self.acceptance_rate, 4),
            "generations": self.generations,
            "timed_out": self.timed_out,
            "timeout_rate": round(self.timeout_rate, 4),
            "cache_hits": self.cache_hits,
            "mean_ms": round(statistics.fmean(ordered), 1) if ordered else 0.0,
            "p50_ms": round(percentile(ordered, 0.5), 1),
            "p95_ms": round(percentile(ordered, 0.95), 1),
        }


@dataclass(frozen=True)
class MetricComparison:
    """candidate − stable for one metric; `verdict` is "better", "worse", "no clear difference" or
    "not enough data" from the candidate's point of view."""

    metric: str
    difference: float | None
    low: float | None
    high: float | None
    verdict: str
    samples: tuple[int, int]  # (stable, candidate) counts the metric is computed over


@dataclass(frozen=True)
class Comparison:
    stable: ModelSample
    candidate: ModelSample
    metrics: tuple[MetricComparison, ...]
    verdict: str  # one sentence for the user

    def as_dict(self) -> dict[str, object]:
        return {
            "stable": self.stable.as_dict(),
            "candidate": self.candidate.as_dict(),
            "metrics": [
                {
                    "metric": m.metric,
                    "difference": None if m.difference is None else round(m.difference, 4),
                    "ci95": None if m.low is None else [round(m.low, 4), round(m.high or 0.0, 4)],
                    "verdict": m.verdict,
                    "samples": list(m.samples),
                }
                for m in self.metrics
            ],
            "verdict": self.verdict,
        }


def _judge(
    metric: str,
    n: tuple[int, int],
    interval: tuple[float, float, float] | None,
    *,
    higher_is_better: bool,
    min_samples: int,
) -> MetricComparison:
    if interval is None or min(n) < min_samples:
        return MetricComparison(metric, None, None, None, "not enough data", n)
    diff, low, high = interval
    if low > 0:
        verdict = "better" if higher_is_better else "worse"
    elif high < 0:
        verdict = "worse" if higher_is_better else "better"
    else:
        verdict = "no clear difference"
    return MetricComparison(metric, diff, low, high, verdict, n)


def compare(stable: ModelSample, candidate: ModelSample, *, min_samples: int = MIN_SAMPLES) -> Comparison:
    """Acceptance, mean latency and timeout rate of `candidate` against `stable`, and one verdict."""
    acceptance = _judge(
        "acceptance_rate",
        (stable.shown, candidate.shown),
        rate_difference(stable.accepted, stable.shown, candidate.accepted, candidate.shown),
        higher_is_better=True,
        min_samples=min_samples,
    )
    lat_a, lat_b = stable.latencies_ms, candidate.latencies_ms
    latency = _judge(
        "mean_latency_ms",
        (len(lat_a), len(lat_b)),
        mean_difference(lat_a, lat_b) if len(lat_a) >= 2 and len(lat_b) >= 2 else None,
        higher_is_better=False,
        min_samples=min_samples,
    )
    timeouts = _judge(
        "timeout_rate",
        (stable.generations, candidate.generations),
        rate_difference(stable.timed_out, stable.generations, candidate.timed_out, candidate.generations),
        higher_is_better=False,
        min_samples=min_samples,
    )
    metrics = (acceptance, latency, timeouts)
    return Comparison(stable, candidate, metrics, _verdict(stable, candidate, metrics, min_samples))


def _verdict(
    stable: ModelSample, candidate: ModelSample, metrics: Sequence[MetricComparison], min_samples: int
) -> str:
    if all(m.verdict == "not enough data" for m in metrics):
        fewest = min((stable, candidate), key=lambda s: s.shown)
        return (
            f"not enough data yet: {fewest.label} has {fewest.shown} shown suggestions, "
            f"at least {min_samples} per model are needed"
        )
    better = [m.metric for m in metrics if m.verdict == "better"]
    worse = [m.metric for m in metrics if m.verdict == "worse"]
    name, base = candidate.label, stable.label
    if better and not worse:
        return f"{name} is better than {base} ({', '.join(better)})"
    if worse and not better:
        return f"{name} is worse than {base} ({', '.join(worse)})"
    if better and worse:
        return f"mixed: {name} is better on {', '.join(better)} and worse on {', '.join(worse)}"
    return f"no clear difference between {name} and {base} yet (the 95% intervals include 0): keep collecting"
