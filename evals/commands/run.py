"""`potion eval run SUITE --model A`: generate, run each program in the sandbox, print and store metrics."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from evals.commands import check_generation
from potion.cli_args import add_command, arg


@dataclass
class RunArgs:
    suite: str = arg(
        "task suite: a name in evals/suites (elixir) or a MultiPL-E style .jsonl", positional=True
    )
    model: str | None = arg("registry name, .gguf path, 'base + adapter' or server URL", default=None)
    samples: int = arg("completions per task (n of pass@k)", default=1)
    temperature: float = arg("sampling temperature (0: greedy)", default=0.0)
    max_tokens: int = arg("most tokens per completion", default=384)
    k: list[int] = arg("pass@k values", default_factory=lambda: [1], sep=",")
    jobs: int | None = arg("programs run in parallel (default: one per core)", default=None)
    timeout: float = arg("seconds each program may run", default=20.0)
    rerun: bool = arg("measure again even if results are stored", default=False)
    results: Path | None = arg("where results are stored (default: potion's data dir)", default=None)
    progress: bool = arg("show progress bars", default=True)

    def __post_init__(self) -> None:
        check_generation(self.samples, self.temperature, self.max_tokens)
        if not self.k or any(k < 1 or k > self.samples for k in self.k):
            raise ValueError(f"--k values must be between 1 and --samples ({self.samples}), got {self.k}")
        if self.jobs is not None and self.jobs < 1:
            raise ValueError(f"--jobs must be 1 or more, got {self.jobs}")
        if self.timeout <= 0:
            raise ValueError(f"--timeout must be positive, got {self.timeout}")


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(subparsers, "run", RunArgs, run, help="run a task suite on a model in the sandbox")


def run(args: RunArgs) -> int:
    from evals import report
    from evals.progress import bars
    from evals.run_suite import GenerationConfig, evaluate
    from evals.sandbox import Limits, Sandbox
    from evals.store import ResultStore
    from evals.tasks import load_suite

    suite = load_suite(args.suite)
    sandbox = Sandbox(Limits(timeout_s=args.timeout), jobs=args.jobs)
    if sandbox.warning:
        print(f"potion: warning: {sandbox.warning}", file=sys.stderr)
    config = GenerationConfig(args.samples, args.temperature, args.max_tokens, tuple(args.k))
    with bars(args.progress) as progress:
        result = evaluate(
            args.model,
            suite,
            config,
            sandbox=sandbox,
            store=ResultStore(args.results),
            rerun=args.rerun,
            progress=progress,
        )
    print(report.suite_markdown(result))
    print(f"\nresults: {result['path']}" + (" (stored earlier, not re-run)" if result.get("reused") else ""))
    return 0
