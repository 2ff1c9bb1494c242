"""Benchmark the corpus pipeline on Elixir's own source: the per-file stages (decode, filters, scrub,
tree-sitter analysis, stage-2 samples, MinHash) end to end against a bare tree-sitter parse of the same
files in the same run, near-dedup throughput, and 2 worker processes against 1.

    .venv/bin/python bench/corpus_throughput.py --quick      # JSON object on the last line

pipeline_vs_parse = pipeline files/s (the configured 2 workers) / bare parse files/s (1 process);
workers_speedup = pipeline files/s with 2 workers / with 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.elixir_analysis import timed  # noqa: E402 - best of N wall times, as the other benchmarks
from corpus import dedup  # noqa: E402
from corpus.build import _results  # noqa: E402
from corpus.config import CorpusConfig  # noqa: E402
from potion.elixir.analysis import parse  # noqa: E402

SRC = ROOT / ".cache" / "elixir-src"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer files and repeats")
    ap.add_argument("--src", type=Path, default=SRC)
    args = ap.parse_args()
    files = sorted(args.src.glob("lib/*/lib/**/*.ex"))
    if not files:
        print(f"no Elixir source under {args.src}: run scripts/fetch-elixir-source.sh", file=sys.stderr)
        return 1
    files = files[:400] if args.quick else files
    repeat = 2 if args.quick else 3
    size = sum(f.stat().st_size for f in files)
    items = [
        {
            "id": i,
            "abspath": str(f),
            "path": f.relative_to(args.src).as_posix(),
            "source": "bench",
            "project": "bench",
            "license": "Apache-2.0",
        }
        for i, f in enumerate(files)
    ]
    cfg = CorpusConfig()

    parse_s = timed(lambda: [parse(f.read_bytes()) for f in files], repeat)
    results: list = []

    def run(workers: int) -> None:
        results[:] = list(_results(items, cfg, workers))

    one_s = timed(lambda: run(1), repeat)
    two_s = timed(lambda: run(2), repeat)
    kept = [(str(i), r["minhash"]) for i, r in results if r["status"] == "kept"]
    dedup_s = timed(
        lambda: dedup.near_duplicates(kept, num_perm=cfg.dedup.num_perm, threshold=cfg.dedup.threshold),
        repeat,
    )
    n, mb = len(files), size / 1e6
    report = {
        "files": n,
        "mb": round(mb, 2),
        "parse_files_per_s": round(n / parse_s, 1),
        "pipeline_files_per_s": round(n / two_s, 1),
        "pipeline_mb_per_s": round(mb / two_s, 2),
        "pipeline_1worker_files_per_s": round(n / one_s, 1),
        "pipeline_vs_parse": round(parse_s / two_s, 3),
        "workers_speedup": round(one_s / two_s, 3),
        "near_dedup_records_per_s": round(len(kept) / dedup_s, 1),
        "targets": {"pipeline_vs_parse": 0.5, "workers_speedup": 1.6},
    }
    for k, v in report.items():
        if k != "targets":
            print(f"{k:32} {v}", file=sys.stderr)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
