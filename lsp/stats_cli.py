"""`potion stats`: latency, acceptance and cache-hit rates of the language server's suggestions.

`--by-model` compares the models that answered (a canary split: `potion.canary.*`) with confidence
intervals (`potion.abtest`); `--prometheus` prints the metrics in Prometheus text format (`lsp.metrics`).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

from potion.cli_args import add_command, arg


@dataclass
class StatsArgs:
    """The flags of `potion stats`."""

    repair: bool = arg(
        "salvage a damaged telemetry database (readable rows kept, damaged file kept)", default=False
    )
    days: float | None = arg("only the last N days", default=None)
    json: bool = arg("print one JSON object", default=False)
    by_model: bool = arg("compare the models that answered (canary / A-B) with 95% intervals", default=False)
    min_samples: int = arg("with --by-model: suggestions per model before a verdict", default=30)
    prometheus: bool = arg("print the metrics in Prometheus text format", default=False)

    def __post_init__(self) -> None:
        if self.days is not None and self.days <= 0:
            raise ValueError(f"--days must be positive, got {self.days}")
        if self.min_samples < 2:
            raise ValueError(f"--min-samples must be at least 2, got {self.min_samples}")
        if self.prometheus and (self.by_model or self.json):
            raise ValueError("--prometheus prints its own format: leave out --by-model and --json")


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(
        subparsers,
        "stats",
        StatsArgs,
        run,
        help="show suggestion latency (p50/p95), acceptance and cache-hit rates (local telemetry)",
        description="Summarise the local telemetry the language server records in SQLite.",
    )


def run(args: StatsArgs) -> int:
    from lsp.telemetry import default_path, repair, summary

    if args.repair:
        print(repair())
        return 0
    since = time.time() - args.days * 86400 if args.days is not None else None
    path = default_path()
    if args.prometheus:
        from lsp.metrics import from_telemetry
        from lsp.model_stats import rows

        print(from_telemetry(rows(path, since=since)).exposition(), end="")
        return 0
    if args.by_model:
        return _by_model(args, path, since)
    stats = summary(path, since=since)
    if args.json:
        print(json.dumps(stats))
        return 0
    if not stats["suggestions"]:
        print(f"no suggestions recorded yet ({path})")
        return 0
    print(f"suggestions   {stats['suggestions']} ({stats['shown']} shown, {stats['accepted']} accepted)")
    print(f"latency       p50 {stats['p50_ms']:.0f} ms, p95 {stats['p95_ms']:.0f} ms")
    print(f"acceptance    {stats['acceptance_rate']:.1%} of shown")
    print(f"cache hits    {stats['cache_hit_rate']:.1%}")
    print(f"database      {path}")
    return 0


def _by_model(args: StatsArgs, path: Path, since: float | None) -> int:
    from lsp.model_stats import comparison, rows, samples

    groups = samples(rows(path, since=since))
    result = comparison(groups, min_samples=args.min_samples)
    if args.json:
        print(
            json.dumps(
                {
                    "models": [g.as_dict() for g in groups],
                    "comparison": result.as_dict() if result is not None else None,
                }
            )
        )
        return 0
    if not groups:
        print(f"no suggestions recorded yet ({path})")
        return 0
    print(f"{'model [arm]':<40} {'shown':>7} {'accept':>7} {'p50 ms':>8} {'p95 ms':>8} {'timeouts':>8}")
    for g in groups:
        print(
            f"{g.label:<40} {g.shown:>7} {g.acceptance_rate:>7.1%} {g.latency(0.5):>8.0f} "
            f"{g.latency(0.95):>8.0f} {g.timeout_rate:>8.1%}"
        )
    if result is None:
        print("no canary data to compare: set potion.canary.model and potion.canary.share in the editor")
        return 0
    print(f"\n{result.candidate.label} - {result.stable.label} (95% interval):")
    units = {"acceptance_rate": ("acceptance", 100, "pt"), "mean_latency_ms": ("mean latency", 1, "ms")}
    units["timeout_rate"] = ("timeouts", 100, "pt")
    for m in result.metrics:
        name, scale, unit = units[m.metric]
        if m.difference is None:
            line = f"not enough data ({m.samples[0]} vs {m.samples[1]}, need {args.min_samples} each)"
        else:
            line = (
                f"{m.difference * scale:+.1f} {unit} [{m.low * scale:+.1f}, {(m.high or 0) * scale:+.1f}]"
                f"  {m.verdict}"
            )
        print(f"  {name:<13} {line}")
    print(f"verdict: {result.verdict}")
    return 0
