"""Prometheus metrics of the language server's suggestions, and the slow-latency warning.

One `Metrics` per server, with its own registry (no process-global state): latency histograms per model
and kind, counters of suggestions (throughput: `rate(potion_suggestions_total[5m])`), generated tokens,
shown and accepted suggestions, cache hits, timeouts and failed generations. `potion lsp --metrics-port N`
serves them on http://127.0.0.1:N/metrics; `potion stats --prometheus` prints the same metrics rebuilt from
the telemetry database (`from_telemetry`), so both share one definition.

The warning: after each suggestion, the p95 latency of the suggestions of the last minute is checked
against a threshold (`potion.latencyWarningMs`, default 5 s); the first time it passes, `on_slow` is
called, once per server: the user hears it once, not once a keystroke. Fewer than `MIN_WINDOW` samples
in the minute never warn (one slow cold start is no trend).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from potion.abtest import percentile

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
WINDOW_S = 60.0
MIN_WINDOW = 5
_REMEMBERED = 4096  # suggestion ids kept to label a later acceptance with its model


class _Errors(Collector):
    """Failed generations per model, read from the engine's counters at scrape time."""

    def __init__(self, source: Callable[[], Mapping[str, int]]) -> None:
        self.source = source

    def collect(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily("potion_errors", "Generations that failed, per model", labels=["model"])
        for model, count in sorted(self.source().items()):
            family.add_metric([model], count)
        yield family


class Metrics:
    """The server's metrics; `observe` and `accepted` may be called from any thread."""

    def __init__(
        self,
        *,
        errors: Callable[[], Mapping[str, int]] | None = None,
        on_slow: Callable[[float, int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = CollectorRegistry()
        labels = ["model", "arm", "kind"]
        self.latency = Histogram(
            "potion_suggestion_latency_seconds",
            "Time from request to answer of a suggestion, per model and kind (inline, completion)",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.suggestions = Counter(
            "potion_suggestions", "Suggestions answered", labels, registry=self.registry
        )
        self.shown = Counter(
            "potion_suggestions_shown", "Suggestions with text shown", labels, registry=self.registry
        )
        self.accepted_total = Counter(
            "potion_suggestions_accepted", "Suggestions the user accepted", labels, registry=self.registry
        )
        self.cache_hits = Counter(
            "potion_cache_hits", "Suggestions answered from the cache", labels, registry=self.registry
        )
        self.timeouts = Counter(
            "potion_timeouts", "Generations stopped by the time budget", labels, registry=self.registry
        )
        self.tokens = Counter(
            "potion_completion_tokens", "Tokens generated", ["model", "arm"], registry=self.registry
        )
        self.p95 = Gauge(
            "potion_latency_p95_seconds",
            "p95 suggestion latency over the last minute",
            registry=self.registry,
        )
        self.p95.set_function(lambda: self.window_p95() or 0.0)
        self.registry.register(_Errors(errors or dict))  # the engine's counts, read at scrape time
        self.on_slow = on_slow
        self.warn_after_s = 5.0  # 0: never warn
        self.warned = False
        self.port: int | None = None
        self._clock = clock
        self._window: deque[tuple[float, float]] = deque()
        self._ids: OrderedDict[str, tuple[str, str, str]] = OrderedDict()
        self._lock = threading.Lock()
        self._httpd: Any = None

    def configure(self, *, warn_after_s: float) -> None:
        """The p95 threshold of the slow-latency warning, in seconds (0: never warn)."""
        self.warn_after_s = warn_after_s

    # -- recording ----------------------------------------------------------------------------------

    def observe(
        self,
        *,
        suggestion_id: str,
        model: str,
        arm: str,
        kind: str,
        latency_s: float,
        shown: bool,
        cache_hit: bool,
        timed_out: bool = False,
        completion_tokens: int = 0,
        check_latency: bool = True,
    ) -> None:
        """One answered suggestion."""
        labels = (model, arm, kind)
        self.latency.labels(*labels).observe(latency_s)
        self.suggestions.labels(*labels).inc()
        if shown:
            self.shown.labels(*labels).inc()
        if cache_hit:
            self.cache_hits.labels(*labels).inc()
        if timed_out:
            self.timeouts.labels(*labels).inc()
        if completion_tokens:
            self.tokens.labels(model, arm).inc(completion_tokens)
        with self._lock:
            self._ids[suggestion_id] = labels
            while len(self._ids) > _REMEMBERED:
                self._ids.popitem(last=False)
        if check_latency:
            self._check_latency(latency_s)

    def accepted(self, suggestion_id: str) -> None:
        """The user accepted a suggestion; counted under the model that made it (unknown ids are not)."""
        with self._lock:
            labels = self._ids.pop(suggestion_id, None)
        if labels is not None:
            self.accepted_total.labels(*labels).inc()

    # -- the slow-latency warning -------------------------------------------------------------------

    def window_p95(self) -> float | None:
        """p95 latency (s) of the last minute's suggestions; None below MIN_WINDOW samples."""
        now = self._clock()
        with self._lock:
            while self._window and self._window[0][0] < now - WINDOW_S:
                self._window.popleft()
            values = sorted(latency for _, latency in self._window)
        return percentile(values, 0.95) if len(values) >= MIN_WINDOW else None

    def _check_latency(self, latency_s: float) -> None:
        with self._lock:
            self._window.append((self._clock(), latency_s))
        if self.warned or self.warn_after_s <= 0:
            return
        p95 = self.window_p95()
        if p95 is None or p95 <= self.warn_after_s:
            return
        with self._lock:
            if self.warned:
                return
            self.warned = True
            samples = len(self._window)
        log.warning("p95 latency %.2fs over the last minute (%d suggestions)", p95, samples)
        if self.on_slow is not None:
            self.on_slow(p95, samples)

    # -- exposition ---------------------------------------------------------------------------------

    def exposition(self) -> str:
        """The metrics in Prometheus text format."""
        return generate_latest(self.registry).decode("utf-8")

    def serve(self, port: int) -> int:
        """Serve /metrics on 127.0.0.1:`port` (0: any free port) from a daemon thread; the bound port.
        Raises OSError when the port cannot be bound."""
        from prometheus_client import start_http_server

        httpd, _thread = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        self._httpd = httpd
        self.port = int(httpd.server_port)
        return self.port

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


def from_telemetry(rows: Iterable[Mapping[str, Any]]) -> Metrics:
    """Metrics rebuilt from telemetry rows (`lsp.model_stats.rows`): what `potion stats --prometheus`
    prints. Failed generations are not in the telemetry, so `potion_errors` stays empty there."""
    metrics = Metrics()
    metrics.registry.unregister(metrics.p95)  # "the last minute" of a live server: meaningless here
    for row in rows:
        metrics.observe(
            suggestion_id=row["id"],
            model=row["model"],
            arm=row["arm"],
            kind=row["kind"],
            latency_s=row["latency_ms"] / 1000,
            shown=bool(row["shown"]),
            cache_hit=bool(row["cache_hit"]),
            timed_out=bool(row["timed_out"]),
            completion_tokens=row["completion_tokens"],
            check_latency=False,
        )
        if row["accepted"]:
            metrics.accepted(row["id"])
    return metrics
