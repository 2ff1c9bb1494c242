"""`potion corpus build --config corpus.yaml --out DIR`."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from potion.cli_args import add_command, arg


@dataclass
class BuildArgs:
    config: Path = arg("corpus YAML (see configs/corpus/elixir-default.yaml)")
    out: Path = arg("output folder (appears only when the build is complete)")
    workers: int | None = arg("worker processes (default: the config's `workers`)", default=None)
    decontaminate: list[Path] = arg(
        "extra benchmark JSONL to decontaminate against (repeatable)",
        default_factory=list,
        repeat=True,
        metavar="FILE.jsonl",
    )
    force: bool = arg("replace an existing corpus at --out", default=False)
    keep_work: bool = arg("keep the SQLite work state after a successful build", default=False)
    progress: bool = arg("progress bars", default=True)

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {self.workers}")
        for path in self.decontaminate:
            if not path.is_file():
                raise ValueError(f"--decontaminate {path}: no such file")


def run(args: BuildArgs) -> int:
    from corpus.build import build
    from corpus.commands.stats import summary_lines
    from corpus.config import load_config

    cfg = load_config(args.config)
    manifest = build(
        cfg,
        args.out,
        workers=args.workers,
        force=args.force,
        keep_work=args.keep_work,
        progress=args.progress,
        extra_benchmarks=args.decontaminate,
    )
    for line in summary_lines(manifest):
        print(line)
    print(f"corpus written to {args.out.resolve()} in {manifest['wall_s']:.1f}s")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "build", BuildArgs, run, help="build stage-1/stage-2 datasets from Elixir sources")
