"""Did fine-tuning help? Base vs tuned on the four things a fine-tune on Elixir should change, or keep:

- held-out Elixir perplexity (the corpus's validation split: whole projects never trained on, decontaminated
  against the task suites when the corpus was built);
- general-code perplexity (forgetting): the `eval` half of Python standard library modules
  (`corpus.general`), permissively licensed (PSF) and on every machine that runs Potion; training replays
  only the other half;
- exact match on single-line infills of held-out Elixir files, through the editor's completion pipeline
  (`potion.completion` via `evals.fim`): what the language server would show;
- pass@1 on the project's Elixir task suite, run for real in the sandbox.

Each model is measured once per (model file, settings, data) and stored, so a second comparison against the
same base reads the base's numbers instead of measuring them again.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from evals import models
from evals.errors import EvalError
from evals.store import ResultStore, commit, key

Progress = Callable[[str, int], Callable[[int], None]]


@dataclass(frozen=True)
class GainSettings:
    ppl_docs: int = 64  # documents per perplexity set
    window: int = 512  # tokens scored from the start of each document
    fim_items: int = 60  # single-line infills
    suite: str = "elixir"
    max_tokens: int = 384  # per suite completion
    seed: int = 0


# metric -> (how tuned must compare with base, the bound, in words)
TARGETS = {
    "elixir_ppl": ("ratio_at_most", 0.90, "tuned ≤ 0.90 × base"),
    "general_ppl": ("ratio_at_most", 1.03, "tuned ≤ 1.03 × base"),
    "fim_exact": ("above", 0.0, "tuned > base"),
    "pass_at_1": ("at_least_minus", 0.02, "tuned ≥ base − 0.02"),
}


def heldout_elixir(corpus: Path, count: int, seed: int = 0) -> list[tuple[str, str]]:
    """A seeded sample of the corpus's stage-1 validation documents, as (project/path, text)."""
    import pyarrow.parquet as pq

    from corpus.schema import split_path

    path = split_path(corpus, "stage1", "validation")
    if not path.is_file():
        raise EvalError(
            f"{path} does not exist",
            hint="build the corpus first: potion corpus build --config configs/corpus/elixir-default.yaml",
        )
    table = pq.read_table(path, columns=["text", "path", "project"]).to_pylist()
    docs = sorted((f"{r['project']}/{r['path']}", r["text"]) for r in table if r["text"].strip())
    if not docs:
        raise EvalError(f"{path} has no documents", hint="the corpus needs a validation split")
    return _sample(docs, count, seed)


def general_code(count: int, seed: int = 0, root: Path | None = None) -> list[tuple[str, str]]:
    """A seeded sample of the `eval` half of the general code (corpus.general: Python standard library
    modules; the `train` half is what training replays)."""
    from corpus.general import general_code as modules
    from corpus.general import stdlib_root

    docs = modules("eval", root)
    if not docs:
        raise EvalError(f"no Python sources under {root or stdlib_root()}", hint="pass --general FOLDER")
    return _sample(docs, count, seed)


def _sample(docs: list[tuple[str, str]], count: int, seed: int) -> list[tuple[str, str]]:
    if count >= len(docs):
        return docs
    return sorted(random.Random(seed).sample(docs, count))


def measure(
    spec: str,
    *,
    corpus: Path,
    fim_folder: Path,
    settings: GainSettings,
    store: ResultStore,
    general_root: Path | None = None,
    threads: int = 2,
    rerun: bool = False,
    progress: Progress,
) -> dict:
    """The four measurements of one model (stored; reused when the model file and settings are unchanged)."""
    from evals import fim
    from evals.perplexity import perplexity_of
    from evals.run_suite import GenerationConfig, evaluate
    from evals.sandbox import Sandbox
    from evals.tasks import load_suite
    from potion.completion import DEFAULT_SETTINGS

    elixir = heldout_elixir(corpus, settings.ppl_docs, settings.seed)
    general = general_code(settings.ppl_docs, settings.seed, general_root)
    items = [
        i
        for i in fim.extract_items(
            fim_folder, split="holdout", count=settings.fim_items, seed=settings.seed, body_share=0.0
        )
        if i.kind == "line"
    ]
    if not items:
        raise EvalError(f"{fim_folder} has no single-line infills", hint="pass --fim-folder FOLDER")
    suite = load_suite(settings.suite)
    data_key = key(
        [n for n, _ in elixir],
        [n for n, _ in general],
        [i.id for i in items],
        suite.digest,
        str(DEFAULT_SETTINGS),
    )
    name = f"{models.slug(spec)}-{key(models.identity(spec), dataclasses.asdict(settings), data_key)}"
    if not rerun and (stored := store.load("gain", name)) is not None:
        stored["reused"] = True
        return stored

    timings: dict[str, float] = {}
    backend = models.open_model(spec, threads=threads)
    try:
        started = time.perf_counter()
        elixir_ppl = perplexity_of(
            backend,
            elixir,
            window_tokens=settings.window,
            advance=progress(f"{spec}: Elixir ppl", len(elixir)),
        )
        timings["elixir_ppl_s"] = time.perf_counter() - started
        started = time.perf_counter()
        general_ppl = perplexity_of(
            backend,
            general,
            window_tokens=settings.window,
            advance=progress(f"{spec}: general ppl", len(general)),
        )
        timings["general_ppl_s"] = time.perf_counter() - started
        started = time.perf_counter()
        runner = fim.FimRunner(backend, fim_folder)
        rows = fim.run_variants(
            runner,
            items,
            [fim.Variant("pipeline", DEFAULT_SETTINGS)],
            progress(f"{spec}: infills", len(items)),
        )
        timings["fim_s"] = time.perf_counter() - started
        started = time.perf_counter()
        sandbox = Sandbox()
        suite_result = evaluate(
            spec,
            suite,
            GenerationConfig(1, 0.0, settings.max_tokens, (1,)),
            sandbox=sandbox,
            store=store,
            rerun=rerun,
            progress=progress,
            backend=backend,
        )
        timings["suite_s"] = time.perf_counter() - started
    finally:
        backend.close()
    document = {
        "kind": "gain",
        "model": spec,
        "commit": commit(),
        "settings": dataclasses.asdict(settings),
        "elixir_ppl": elixir_ppl["perplexity"],
        "elixir_tokens": elixir_ppl["tokens"],
        "general_ppl": general_ppl["perplexity"],
        "general_tokens": general_ppl["tokens"],
        "fim_items": len(rows),
        "fim_exact": statistics.fmean(r["exact"] for r in rows),
        "fim_similarity": statistics.fmean(r["similarity"] for r in rows),
        "pass_at_1": suite_result["summary"]["pass@1"],
        "compile_rate": suite_result["summary"]["compile_rate"],
        "suite_tasks": suite_result["summary"]["tasks"],
        "timings": timings,
        "fim_rows": rows,
        "elixir_files": elixir_ppl["files"],
        "general_files": general_ppl["files"],
    }
    store.save("gain", name, document)
    document["reused"] = False
    return document


def verdicts(base: dict, tuned: dict) -> dict[str, dict]:
    """Per target metric: base, tuned, the ratio or difference, and whether the target is met."""
    out = {}
    for metric, (rule, bound, words) in TARGETS.items():
        b, t = base[metric], tuned[metric]
        if rule == "ratio_at_most":
            value = t / b
            met = value <= bound
        elif rule == "above":
            value = t - b
            met = t > b
        else:
            value = t - b
            met = t >= b - bound
        out[metric] = {"base": b, "tuned": t, "value": value, "met": met, "target": words, "rule": rule}
    return out


def summary_json(base: dict, tuned: dict, train_minutes: float | None = None) -> dict:
    """The benchmark's last-line JSON."""
    return {
        "elixir_ppl_ratio": tuned["elixir_ppl"] / base["elixir_ppl"],
        "general_ppl_ratio": tuned["general_ppl"] / base["general_ppl"],
        "fim_exact_base": base["fim_exact"],
        "fim_exact_tuned": tuned["fim_exact"],
        "pass_at_1_base": base["pass_at_1"],
        "pass_at_1_tuned": tuned["pass_at_1"],
        "train_minutes": train_minutes,
    }


def markdown(base: dict, tuned: dict, *, chart: str | None, context: list[str]) -> str:
    rows = verdicts(base, tuned)
    lines = [
        f"# Fine-tuning gain: `{tuned['model']}` vs `{base['model']}`",
        "",
        *context,
        "",
        "| metric | base | tuned | change | target | met |",
        "|---|---:|---:|---:|---|:---:|",
    ]
    for metric, r in rows.items():
        if r["rule"] == "ratio_at_most":
            fmt, change = "{:.3f}", f"{r['value']:.3f}×"
        else:
            fmt, change = "{:.1%}", f"{100 * r['value']:+.1f} pts"
        lines.append(
            f"| {metric} | {fmt.format(r['base'])} | {fmt.format(r['tuned'])} | {change} | {r['target']} | "
            f"{'yes' if r['met'] else '**no**'} |"
        )
    lines += [
        f"| fim edit similarity | {base['fim_similarity']:.3f} | {tuned['fim_similarity']:.3f} | "
        f"{tuned['fim_similarity'] - base['fim_similarity']:+.3f} | (not a target) | |",
        f"| suite compile rate | {base['compile_rate']:.1%} | {tuned['compile_rate']:.1%} | "
        f"{100 * (tuned['compile_rate'] - base['compile_rate']):+.1f} pts | (not a target) | |",
        "",
        f"Sizes: Elixir perplexity over {base['elixir_tokens']:,} tokens of {len(base['elixir_files'])} "
        f"held-out documents; general-code perplexity over {base['general_tokens']:,} tokens of "
        f"{len(base['general_files'])} Python standard-library modules; {base['fim_items']} single-line "
        f"infills "
        f"from the held-out half of the FIM folder; {base['suite_tasks']} suite tasks (pass@1, greedy).",
        "",
        "| measurement time (s) | base | tuned |",
        "|---|---:|---:|",
    ]
    for part in base["timings"]:
        lines.append(
            f"| {part} | {base['timings'][part]:.0f} | {tuned['timings'].get(part, float('nan')):.0f} |"
        )
    if chart:
        lines += ["", f"![base vs tuned]({chart})"]
    return "\n".join(lines) + "\n"


def chart(base: dict, tuned: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("elixir_ppl", "held-out Elixir perplexity (lower is better)"),
        ("general_ppl", "Python stdlib perplexity (forgetting)"),
        ("fim_exact", "single-line infill exact match"),
        ("pass_at_1", "Elixir suite pass@1"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.6))
    for ax, (metric, title) in zip(axes, panels, strict=True):
        values = [base[metric], tuned[metric]]
        bars = ax.bar(["base", "tuned"], values, color=["#8c8c8c", "#6a3d9a"])
        ax.bar_label(bars, fmt="%.3f")
        ax.set_title(title, fontsize=9)
        ax.set_ylim(0, max(values) * 1.25 or 1)
    fig.suptitle(f"{tuned['model']} vs {base['model']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
