"""potion.abtest: the intervals against published values, and the verdicts."""

from __future__ import annotations

import random
import zlib

import pytest

from potion.abtest import ModelSample, compare, mean_difference, rate_difference, t_quantile, wilson


def test_wilson_matches_published_values():
    # Newcombe (1998), table I: 81/263 -> 0.2553..0.3662; 0/10 -> 0..0.2775.
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


def test_newcombe_difference_matches_the_paper():
    # Newcombe (1998), example (a): 56/70 vs 48/80, method 10: 0.0524..0.3339.
    diff, low, high = rate_difference(48, 80, 56, 70)
    assert diff == pytest.approx(0.2)
    assert (low, high) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    # (h) 0/10 vs 0/20: the interval straddles 0 and stays in [-1, 1].
    diff, low, high = rate_difference(0, 20, 0, 10)
    assert diff == 0 and -1 <= low < 0 < high <= 1


@pytest.mark.parametrize(("df", "exact"), [(5, 2.5706), (10, 2.2281), (30, 2.0423), (1000, 1.9623)])
def test_t_quantile_is_close_to_the_tables(df, exact):
    assert t_quantile(0.975, df) == pytest.approx(exact, abs=2e-3)


def test_welch_interval_covers_the_true_difference_and_excludes_zero_when_clear():
    rng = random.Random(1)
    a = [rng.gauss(100, 20) for _ in range(200)]
    b = [rng.gauss(80, 30) for _ in range(150)]
    diff, low, high = mean_difference(a, b)
    assert low < -20 < high and high < 0
    same = [50.0] * 10
    assert mean_difference(same, same) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        mean_difference([1.0], [1.0, 2.0])


def sample(model, arm, *, shown, accepted, latency, n_lat=None, timed_out=0):
    n = n_lat if n_lat is not None else shown
    rng = random.Random(zlib.crc32(f"{model}/{arm}".encode()))
    return ModelSample(
        model=model,
        arm=arm,
        suggestions=shown,
        shown=shown,
        accepted=accepted,
        generations=n,
        timed_out=timed_out,
        latencies_ms=[rng.gauss(latency, latency / 10) for _ in range(n)],
    )


def test_a_better_candidate_is_called_better():
    result = compare(
        sample("old", "stable", shown=400, accepted=80, latency=300),
        sample("new", "canary", shown=400, accepted=140, latency=200),
    )
    verdicts = {m.metric: m.verdict for m in result.metrics}
    assert verdicts == {
        "acceptance_rate": "better",
        "mean_latency_ms": "better",
        "timeout_rate": "no clear difference",
    }
    assert result.verdict.startswith("new [canary] is better than old [stable]")


def test_a_worse_candidate_and_a_mixed_one():
    worse = compare(
        sample("old", "stable", shown=400, accepted=140, latency=200),
        sample("new", "canary", shown=400, accepted=80, latency=200, timed_out=40),
    )
    assert worse.verdict.startswith("new [canary] is worse")
    mixed = compare(
        sample("old", "stable", shown=400, accepted=80, latency=200),
        sample("new", "canary", shown=400, accepted=140, latency=400),
    )
    assert mixed.verdict.startswith(
        "mixed: new [canary] is better on acceptance_rate and worse on mean_latency"
    )


def test_too_few_suggestions_is_not_enough_data():
    result = compare(
        sample("old", "stable", shown=400, accepted=80, latency=300),
        sample("new", "canary", shown=12, accepted=10, latency=100),
    )
    assert all(m.verdict == "not enough data" for m in result.metrics)
    assert result.verdict == (
        "not enough data yet: new [canary] has 12 shown suggestions, at least 30 per model are needed"
    )
    assert result.as_dict()["metrics"][0]["ci95"] is None


def test_equal_models_have_no_clear_difference():
    result = compare(
        sample("old", "stable", shown=200, accepted=50, latency=200),
        sample("new", "canary", shown=200, accepted=52, latency=200),
    )
    assert result.metrics[0].verdict == "no clear difference"
    assert result.metrics[0].low < 0 < result.metrics[0].high
