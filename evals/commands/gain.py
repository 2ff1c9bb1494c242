"""`potion eval gain BASE TUNED --corpus DIR`: did fine-tuning help? Held-out Elixir perplexity, forgetting
on general code, single-line infills through the editor's pipeline and suite pass@1, base vs tuned, against
the project's targets; report.md, gain.png and gain.json (with the training run's report given `--run`)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from evals.commands.fim import DEFAULT_FOLDER
from potion.cli_args import add_command, arg


@dataclass
class GainArgs:
    base: str = arg("the base model spec (registry name, .gguf, 'base + adapter')", positional=True)
    tuned: str = arg("the tuned model spec", positional=True)
    corpus: Path = arg("the built corpus whose validation split is the held-out Elixir", default=None)
    fim_folder: Path = arg("held-out Elixir files for the infills", default=DEFAULT_FOLDER)
    general: Path | None = arg("general-code folder (default: the Python standard library)", default=None)
    run: Path | None = arg(
        "the training run directory, whose report and loss chart are included", default=None
    )
    ppl_docs: int = arg("documents per perplexity set", default=64)
    window: int = arg("tokens scored from the start of each document", default=512)
    fim_items: int = arg("single-line infills", default=60)
    suite: str = arg("task suite for pass@1", default="elixir")
    max_tokens: int = arg("most tokens per suite completion", default=384)
    seed: int = arg("seed of the samples", default=0)
    threads: int = arg("llama.cpp threads", default=2)
    out: Path | None = arg(
        "folder for report.md, gain.png, gain.json (default: under the results dir)", default=None
    )
    rerun: bool = arg("measure again even if results are stored", default=False)
    results: Path | None = arg("where results are stored (default: potion's data dir)", default=None)
    progress: bool = arg("show progress bars", default=True)

    def __post_init__(self) -> None:
        if self.corpus is None or not Path(self.corpus).is_dir():
            raise ValueError(f"--corpus {self.corpus} is not a built corpus folder (potion corpus build)")
        if not Path(self.fim_folder).is_dir():
            raise ValueError(
                f"--fim-folder {self.fim_folder} is not a folder (fetch Elixir's source: make elixir-src)"
            )
        if self.run is not None and not (Path(self.run) / "report.md").is_file():
            raise ValueError(f"--run {self.run} is not a finished training run (no report.md)")
        for flag, value in (
            ("--ppl-docs", self.ppl_docs),
            ("--fim-items", self.fim_items),
            ("--threads", self.threads),
        ):
            if value < 1:
                raise ValueError(f"{flag} must be 1 or more, got {value}")
        if self.window < 8:
            raise ValueError(f"--window must be at least 8 tokens, got {self.window}")


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(subparsers, "gain", GainArgs, gain, help="base vs tuned against the fine-tuning targets")


def gain(args: GainArgs) -> int:
    from evals import gain as g
    from evals import models
    from evals.progress import bars
    from evals.store import ResultStore, commit

    settings = g.GainSettings(
        ppl_docs=args.ppl_docs,
        window=args.window,
        fim_items=args.fim_items,
        suite=args.suite,
        max_tokens=args.max_tokens,
        seed=args.seed,
    )
    store = ResultStore(args.results)
    measured = {}
    with bars(args.progress) as progress:
        for label, spec in (("base", args.base), ("tuned", args.tuned)):
            measured[label] = g.measure(
                spec,
                corpus=args.corpus,
                fim_folder=args.fim_folder,
                settings=settings,
                store=store,
                general_root=args.general,
                threads=args.threads,
                rerun=args.rerun,
                progress=progress,
            )
    base, tuned = measured["base"], measured["tuned"]
    out = args.out or store.root / f"gain-{models.slug(args.base)}-vs-{models.slug(args.tuned)}"
    out.mkdir(parents=True, exist_ok=True)
    context = [
        f"Measured with `potion eval gain` at commit `{commit() or '?'}` "
        f"(settings: {', '.join(f'{k}={v}' for k, v in vars(settings).items())}); "
        + "; ".join(_provenance(label, result) for label, result in measured.items())
        + ".",
        f"Held-out Elixir: the validation split of `{args.corpus}`{_split_words(args.corpus)}; "
        f"infills: `{args.fim_folder}` (its held-out half).",
    ]
    train_minutes = None
    if args.run is not None:
        shutil.copyfile(args.run / "report.md", out / "training.md")
        if (args.run / "loss.png").is_file():
            shutil.copyfile(args.run / "loss.png", out / "loss.png")
        train_minutes = _train_minutes(args.run)
        context.append(f"Training run: `{args.run}` ([its report](training.md), ![loss](loss.png)).")
    chart = g.chart(base, tuned, out / "gain.png")
    text = g.markdown(base, tuned, chart=chart.name, context=context)
    (out / "report.md").write_text(text, encoding="utf-8")
    summary = g.summary_json(base, tuned, train_minutes)
    document = {"summary": summary, "verdicts": g.verdicts(base, tuned), "base": base, "tuned": tuned}
    (out / "gain.json").write_text(json.dumps(document, indent=1, default=str), encoding="utf-8")
    print(text)
    for label, result in measured.items():
        how = "stored earlier, not re-run" if result.get("reused") else "measured now"
        print(f"{label}: {result['model']} ({how})", file=sys.stderr)
    print(f"report: {out / 'report.md'}", file=sys.stderr)
    print(json.dumps(summary))
    return 0


def _provenance(label: str, result: dict) -> str:
    """Which commit measured a side, and whether this run re-used a stored measurement."""
    if result.get("reused"):
        return f"{label} stored earlier (commit `{result.get('commit') or '?'}`), not re-run"
    return f"{label} measured now"


def _train_minutes(run: Path) -> float | None:
    """The training run's wall time over all its attempts (a killed-and-resumed run counts both)."""
    from trainer.attempts import run_wall_s  # plain JSON files: no torch

    seconds = run_wall_s(run)
    return seconds / 60 if seconds is not None else None


def _split_words(corpus: Path) -> str:
    """How the corpus held its validation data out, from its manifest."""
    try:
        manifest = json.loads((Path(corpus) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return ""
    split = manifest.get("split", {})
    projects = ", ".join(split.get("validation_projects", [])) or "?"
    removed = manifest.get("counts", {}).get("decontaminated", 0)
    return (
        f" (whole projects held out: {projects}; {removed} files overlapping the evaluation suites removed "
        "before splitting)"
    )
