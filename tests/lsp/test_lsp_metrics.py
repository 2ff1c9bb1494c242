"""Prometheus metrics: the registry and the slow-latency warning without a transport, the /metrics
endpoint of `potion lsp --metrics-port` scraped over HTTP, and `potion stats --prometheus`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from lsp_helpers import RawLsp
from prometheus_client.parser import text_string_to_metric_families

from lsp.metrics import MIN_WINDOW, Metrics
from lsp.telemetry import Record, Telemetry

pytestmark = pytest.mark.timeout(90)

INLINE_CAPS = {"textDocument": {"inlineCompletion": {}}}
URI = "file:///w/lib/a.ex"
N_FUNCTIONS = 12
SOURCE = "defmodule A do\n" + "".join(f"  def f{i} do\n    \n  end\n" for i in range(N_FUNCTIONS)) + "end\n"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(parsed: dict, name: str, **labels: str) -> float:
    return parsed.get((name, tuple(sorted(labels.items()))), 0.0)


# -- without a transport ----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def observe(metrics: Metrics, i: int, latency_s: float, **kw) -> None:
    fields = {"model": "m", "arm": "stable", "kind": "inline", "shown": True, "cache_hit": False, **kw}
    metrics.observe(suggestion_id=f"s{i}", latency_s=latency_s, **fields)


def test_counts_histograms_and_acceptance_by_model_and_kind():
    errors = {"m": 2}
    metrics = Metrics(errors=lambda: errors)
    observe(metrics, 1, 0.2, completion_tokens=7)
    observe(metrics, 2, 0.04, cache_hit=True)
    observe(metrics, 3, 3.0, model="c", arm="canary", kind="completion", timed_out=True, shown=False)
    metrics.accepted("s1")
    metrics.accepted("unknown-id")  # not counted: no model to put it under
    parsed = samples(metrics.exposition())
    inline = {"model": "m", "arm": "stable", "kind": "inline"}
    canary = {"model": "c", "arm": "canary", "kind": "completion"}
    assert value(parsed, "potion_suggestions_total", **inline) == 2
    assert value(parsed, "potion_suggestion_latency_seconds_count", **inline) == 2
    assert value(parsed, "potion_suggestion_latency_seconds_bucket", le="0.05", **inline) == 1
    assert value(parsed, "potion_suggestion_latency_seconds_bucket", le="0.25", **inline) == 2
    assert value(parsed, "potion_suggestion_latency_seconds_sum", **inline) == pytest.approx(0.24)
    assert value(parsed, "potion_suggestions_shown_total", **inline) == 2
    assert value(parsed, "potion_suggestions_accepted_total", **inline) == 1
    assert value(parsed, "potion_cache_hits_total", **inline) == 1
    assert value(parsed, "potion_completion_tokens_total", model="m", arm="stable") == 7
    assert value(parsed, "potion_timeouts_total", **canary) == 1
    assert value(parsed, "potion_suggestions_shown_total", **canary) == 0
    assert value(parsed, "potion_errors_total", model="m") == 2


def test_the_slow_warning_fires_once_on_the_p95_of_the_last_minute():
    clock = Clock()
    warnings: list[tuple[float, int]] = []
    metrics = Metrics(on_slow=lambda p95, n: warnings.append((p95, n)), clock=clock)
    metrics.configure(warn_after_s=1.0)
    for i in range(MIN_WINDOW - 1):
        observe(metrics, i, 9.0)  # slow, but too few samples to be a trend
    assert warnings == []
    # An old minute of slow answers leaves the window: the fast ones now count.
    clock.now += 61
    for i in range(50):
        observe(metrics, 100 + i, 0.1)
    assert warnings == [] and metrics.window_p95() == pytest.approx(0.1)
    for i in range(3):
        observe(metrics, 200 + i, 2.5)  # 3 of 53: the p95 rank (50 of 0..52) is still a fast one
    assert warnings == []
    observe(metrics, 203, 2.5)  # 4 of 54: rank 50 of 0..53 is slow
    assert warnings == [(2.5, 54)]
    for i in range(20):
        observe(metrics, 300 + i, 8.0)
    assert len(warnings) == 1  # once


def test_a_threshold_of_zero_never_warns():
    warnings = []
    metrics = Metrics(on_slow=lambda p95, n: warnings.append(p95))
    metrics.configure(warn_after_s=0)
    for i in range(20):
        observe(metrics, i, 30.0)
    assert warnings == []


# -- potion lsp --metrics-port ----------------------------------------------------------------------


def inline(raw: RawLsp, line: int) -> dict:
    return raw.call(
        "textDocument/inlineCompletion",
        {
            "textDocument": {"uri": URI},
            "position": {"line": line, "character": 4},
            "context": {"triggerKind": 1},
        },
    )


def start(home: Path, options: dict, *args: str) -> RawLsp:
    raw = RawLsp(home, args=args)
    # Generous timeouts: on a loaded machine the server takes a while to start.
    params = {
        "processId": None,
        "rootUri": None,
        "capabilities": INLINE_CAPS,
        "initializationOptions": options,
    }
    assert "result" in raw.call("initialize", params, timeout=120)
    raw.notify("initialized", {})
    raw.wait_ready(timeout=60)
    raw.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": URI, "languageId": "elixir", "version": 1, "text": SOURCE}},
    )
    return raw


def fake(**extra) -> dict:
    return {"backend": "fake", "debounceMs": 0, "fake": {"responses": ["x = 1"], **extra}}


def test_metrics_endpoint_counts_move_after_requests(home):
    raw = start(home, fake(), "--metrics-port", "0")
    try:
        port = raw.call("potion/status", {})["result"]["metrics_port"]
        assert isinstance(port, int) and port > 0
        url = f"http://127.0.0.1:{port}/metrics"
        before = samples(httpx.get(url, timeout=10).text)
        labels = {"model": "fake", "arm": "stable", "kind": "inline"}
        assert value(before, "potion_suggestions_total", **labels) == 0
        answers = [inline(raw, 2 + 3 * i)["result"]["items"] for i in range(5)]
        assert all(items and items[0]["insertText"] == "x = 1" for items in answers)
        sid = answers[0][0]["command"]["arguments"][0]
        raw.call("workspace/executeCommand", {"command": "potion.accepted", "arguments": [sid]})
        inline(raw, 2)  # the same cursor again: a cache hit
        after = samples(httpx.get(url, timeout=10).text)
        assert value(after, "potion_suggestions_total", **labels) == 6
        assert value(after, "potion_suggestion_latency_seconds_count", **labels) == 6
        assert value(after, "potion_suggestions_shown_total", **labels) == 6
        assert value(after, "potion_suggestions_accepted_total", **labels) == 1
        assert value(after, "potion_cache_hits_total", **labels) == 1
        assert value(after, "potion_completion_tokens_total", model="fake", arm="stable") > 0
        assert ("potion_latency_p95_seconds", ()) in after
        assert raw.shutdown() == 0
    finally:
        raw.close()


def test_the_p95_warning_comes_once_with_a_slow_backend(home):
    # 5 pieces at 40 ms: each suggestion takes about 200 ms, over a 100 ms threshold.
    options = {**fake(token_delay_ms=40, responses=["x = a + b + c"]), "latencyWarningMs": 100}
    raw = start(home, options)
    try:
        for i in range(MIN_WINDOW + 3):
            assert inline(raw, 2 + 3 * i)["result"]["items"]
        raw.call("potion/status", {})  # let queued notifications arrive
        shown = [n for n in raw.notifications if n["method"] == "window/showMessage"]
        assert len(shown) == 1, shown
        assert shown[0]["params"]["type"] == 2  # Warning
        assert "p95 latency" in shown[0]["params"]["message"]
        assert "above 0.1 s (potion.latencyWarningMs)" in shown[0]["params"]["message"]
    finally:
        raw.close()


def test_a_busy_metrics_port_is_a_warning_and_the_server_still_serves(home):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        raw = start(home, fake(), "--metrics-port", str(port))
        try:
            assert inline(raw, 2)["result"]["items"][0]["insertText"] == "x = 1"
            deadline = time.monotonic() + 10
            while not any(n["method"] == "window/showMessage" for n in raw.notifications):
                assert time.monotonic() < deadline, "no message"
                raw._pump(0.05)
            message = next(n for n in raw.notifications if n["method"] == "window/showMessage")
            assert f"metrics are off: cannot listen on 127.0.0.1:{port}" in message["params"]["message"]
            assert raw.call("potion/status", {})["result"]["metrics_port"] is None
        finally:
            raw.close()


def potion(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "POTION_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "potion.cli", *args], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (("lsp", "--metrics-port", "70000"), "--metrics-port"),
        (("stats", "--prometheus", "--json"), "--prometheus"),
        (("stats", "--by-model", "--min-samples", "1"), "--min-samples"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(home, args, flag):
    done = potion(home, *args)
    assert done.returncode == 2 and flag in done.stderr


def test_stats_prometheus_prints_the_telemetry_as_metrics(home):
    telemetry = Telemetry(home / "data" / "telemetry.sqlite3")
    for i in range(4):
        telemetry.record(Record(f"a{i}", URI, "inline", 100.0 + i, 10, 3, True, False, model="old"))
    telemetry.record(Record("b0", URI, "completion", 900.0, 10, 2, True, False, True, "new", "canary"))
    telemetry.accepted("a1")
    telemetry.flush()
    telemetry.close()
    done = potion(home, "stats", "--prometheus")
    assert done.returncode == 0, done.stderr
    parsed = samples(done.stdout)
    old = {"model": "old", "arm": "stable", "kind": "inline"}
    new = {"model": "new", "arm": "canary", "kind": "completion"}
    assert value(parsed, "potion_suggestions_total", **old) == 4
    assert value(parsed, "potion_suggestions_accepted_total", **old) == 1
    assert value(parsed, "potion_suggestion_latency_seconds_sum", **old) == pytest.approx(0.406)
    assert value(parsed, "potion_timeouts_total", **new) == 1
    assert value(parsed, "potion_suggestion_latency_seconds_bucket", le="1.0", **new) == 1
    assert value(parsed, "potion_completion_tokens_total", model="old", arm="stable") == 12
