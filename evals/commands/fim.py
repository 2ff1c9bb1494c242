"""`potion eval fim`: infilling on held-out Elixir files through the editor's pipeline, and the ablation
of each pipeline choice against the plain-PSM llama.cpp baseline (`--ablate`)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from potion.cli_args import add_command, arg

DEFAULT_FOLDER = Path(".cache/elixir-src/lib/mix/lib")
ABLATIONS = ("indent", "header", "budget", "split", "extra", "trim", "lines")


@dataclass
class FimArgs:
    model: str | None = arg("registry name, .gguf path, 'base + adapter' or server URL", default=None)
    folder: Path = arg("folder of held-out Elixir files", default=DEFAULT_FOLDER)
    split: str = arg("which half of the files", default="tune", choices=("tune", "holdout"))
    items: int = arg("number of infilling items", default=50)
    seed: int = arg("seed of the item sample", default=0)
    ablate: list[str] = arg(
        "pipeline choices to vary: " + ",".join(ABLATIONS) + " or all (default: none, the pipeline vs plain)",
        default_factory=list,
        sep=",",
    )
    variants: list[str] = arg("run only these named variants (see --ablate)", default_factory=list, sep=",")
    threads: int = arg("llama.cpp threads", default=1)
    compile_check: bool = arg("check that files compile with the answer inserted", default=True)
    out: Path | None = arg("write the Markdown table here (and .json next to it)", default=None)
    progress: bool = arg("show progress bars", default=True)

    def __post_init__(self) -> None:
        if self.items < 1:
            raise ValueError(f"--items must be 1 or more, got {self.items}")
        unknown = [a for a in self.ablate if a not in (*ABLATIONS, "all")]
        if unknown:
            raise ValueError(
                f"--ablate: unknown {', '.join(unknown)} (choose from {', '.join(ABLATIONS)}, all)"
            )
        if not self.folder.is_dir():
            raise ValueError(
                f"--folder {self.folder} is not a folder (fetch Elixir's source: make elixir-src)"
            )


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(subparsers, "fim", FimArgs, fim, help="infilling on held-out files; ablation of the pipeline")


def fim(args: FimArgs) -> int:
    from evals import fim as fim_eval
    from evals import report
    from evals.ablation import variants_for
    from evals.models import open_model
    from evals.progress import bars
    from evals.sandbox import Sandbox

    items = fim_eval.extract_items(args.folder, split=args.split, count=args.items, seed=args.seed)
    if not items:
        raise ValueError(f"--folder {args.folder} has no function bodies to infill in the {args.split} split")
    variants = variants_for(args.ablate, only=args.variants)
    partial = args.out.with_suffix(".rows.jsonl") if args.out else None
    if partial:
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text("")

    def log_row(row: dict) -> None:
        if partial:
            with partial.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")

    backend = open_model(args.model, threads=args.threads)
    try:
        runner = fim_eval.FimRunner(backend, args.folder)
        with bars(args.progress) as progress:
            rows = fim_eval.run_variants(
                runner, items, variants, progress("infilling", len(items) * len(variants)), on_row=log_row
            )
    finally:
        backend.close()
    if args.compile_check:
        sandbox = Sandbox()
        if sandbox.warning:
            print(f"potion: warning: {sandbox.warning}", file=sys.stderr)
        fim_eval.compile_checks(items, rows, args.folder, sandbox)
    summary = fim_eval.summarize(rows)
    title = f"{args.split} split: {len(items)} items of {args.folder}, model {args.model or 'default'}"
    markdown = report.ablation_markdown(summary, baseline=fim_eval.PLAIN.name, title=title)
    print(markdown)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(markdown, encoding="utf-8")
        document = {"args": {k: str(v) for k, v in vars(args).items()}, "summary": summary, "rows": rows}
        args.out.with_suffix(".json").write_text(json.dumps(document, indent=1), encoding="utf-8")
    return 0
