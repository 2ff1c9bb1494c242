"""`potion stats`: latency, acceptance and cache-hit rates of the language server's suggestions."""

from __future__ import annotations

import argparse
import json
import time


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="show suggestion latency (p50/p95), acceptance and cache-hit rates (local telemetry)",
        description="Summarise the local telemetry the language server records in SQLite.",
    )
    parser.add_argument("--days", type=float, default=None, help="only the last N days")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lsp.telemetry import default_path, summary

    if args.days is not None and args.days <= 0:
        raise ValueError(f"--days must be positive, got {args.days}")
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
