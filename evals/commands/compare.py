"""`potion eval compare A B`: base vs tuned on a suite, as Markdown + PNG with the per-task differences.
Results are stored per model: a second compare reads them instead of running the models again."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from evals.commands import check_generation
from potion.cli_args import add_command, arg


@dataclass
class CompareArgs:
    base: str = arg("the base model spec (registry name, .gguf, 'base + adapter', URL)", positional=True)
    tuned: str = arg("the tuned model spec", positional=True)
    suite: str = arg("task suite", default="elixir")
    out: Path | None = arg(
        "folder for report.md and report.png (default: under the results dir)", default=None
    )
    samples: int = arg("completions per task", default=1)
    temperature: float = arg("sampling temperature (0: greedy)", default=0.0)
    max_tokens: int = arg("most tokens per completion", default=384)
    jobs: int | None = arg("programs run in parallel (default: one per core)", default=None)
    rerun: bool = arg("measure again even if results are stored", default=False)
    results: Path | None = arg("where results are stored (default: potion's data dir)", default=None)
    progress: bool = arg("show progress bars", default=True)

    def __post_init__(self) -> None:
        check_generation(self.samples, self.temperature, self.max_tokens)


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(
        subparsers, "compare", CompareArgs, compare, help="compare two models on a suite (Markdown + PNG)"
    )


def compare(args: CompareArgs) -> int:
    from evals import models, report
    from evals.progress import bars
    from evals.run_suite import GenerationConfig, evaluate
    from evals.sandbox import Sandbox
    from evals.store import ResultStore
    from evals.tasks import load_suite

    suite = load_suite(args.suite)
    store = ResultStore(args.results)
    sandbox = Sandbox(jobs=args.jobs)
    if sandbox.warning:
        print(f"potion: warning: {sandbox.warning}", file=sys.stderr)
    config = GenerationConfig(args.samples, args.temperature, args.max_tokens, (1,))
    with bars(args.progress) as progress:
        base = evaluate(
            args.base, suite, config, sandbox=sandbox, store=store, rerun=args.rerun, progress=progress
        )
        tuned = evaluate(
            args.tuned, suite, config, sandbox=sandbox, store=store, rerun=args.rerun, progress=progress
        )
    out = args.out or store.root / f"compare-{models.slug(args.base)}-vs-{models.slug(args.tuned)}"
    out.mkdir(parents=True, exist_ok=True)
    chart = report.compare_chart(base, tuned, out / "report.png")
    markdown = report.compare_markdown(base, tuned, chart.name)
    (out / "report.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    for label, result in (("base", base), ("tuned", tuned)):
        how = "stored earlier, not re-run" if result.get("reused") else "measured now"
        print(f"{label}: {result['path']} ({how})", file=sys.stderr)
    print(f"report: {out / 'report.md'}, chart: {chart}", file=sys.stderr)
    return 0
