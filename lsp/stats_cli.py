"""`potion stats`: latency, acceptance and cache-hit rates of the language server's suggestions."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

from potion.cli_args import add_command, arg


@dataclass
class StatsArgs:
    """The flags of `potion stats`."""

    repair: bool = arg(
        "salvage a damaged telemetry database (readable rows kept, damaged file kept)", default=False
    )
    days: float | None = arg("only the last N days", default=None)
    json: bool = arg("print one JSON object", default=False)

    def __post_init__(self) -> None:
        if self.days is not None and self.days <= 0:
            raise ValueError(f"--days must be positive, got {self.days}")


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
