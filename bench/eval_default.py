"""The default model measured by `potion eval`, and the evaluation's own costs, in one run.

    .venv/bin/python bench/eval_default.py --quick

1. pass_at_1: greedy pass@1 of the default model on the project's suite (evals/suites/elixir.jsonl),
   every program run in the sandbox. --quick takes the first task of each category.
2. fim_exact_match and fim_edit_similarity on held-out infilling items (Elixir's lib/mix, the holdout
   split; 50 items, --quick included), through the shared completion pipeline: exactly what the editor
   shows. The plain-PSM llama.cpp baseline (1,500 characters before the cursor, 500 after, indentation
   kept, greedy, first line) answers the same items: fim_vs_plain_similarity = pipeline / plain edit
   similarity (target >= 1.05). Two other line rules answer too, for comparison with the default
   (lines="smart"): single-line, and auto-lines (a block wherever the post-processing allows one, the
   default before docs/completion-defaults.md); and indent-healing (the answer constrained to start
   with the cursor's indentation, which the prompt leaves out; measured, not the default).
3. sandbox_overhead_ratio: the same reference program run by a bare `elixir FILE` and through the
   sandbox (namespaces, rlimits, unprivileged uid), alternating, median of per-pair ratios (target
   <= 1.2).

Wall time and samples/s of the suite run are reported too. Progress goes to stderr; the last line of
stdout is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals import fim  # noqa: E402
from evals.metrics import summarize_tasks  # noqa: E402
from evals.models import open_model  # noqa: E402
from evals.run_suite import GenerationConfig, execute, generate  # noqa: E402
from evals.sandbox import Sandbox  # noqa: E402
from evals.tasks import Suite, load_suite  # noqa: E402

FOLDER = ROOT / ".cache" / "elixir-src" / "lib" / "mix" / "lib"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sandbox_overhead(sandbox: Sandbox, program: str, repeats: int) -> dict:
    elixir = shutil.which("elixir")
    ratios, bare_s, boxed_s = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "program.exs"
        path.write_text(program)
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run([elixir, str(path)], cwd=tmp, capture_output=True, check=True, timeout=120)
            bare = time.perf_counter() - started
            started = time.perf_counter()
            outcome = sandbox.run(program)
            boxed = time.perf_counter() - started
            assert outcome.status == "pass", outcome.detail
            bare_s.append(bare)
            boxed_s.append(boxed)
            ratios.append(boxed / bare)
    return {
        "sandbox_overhead_ratio": statistics.median(ratios),
        "bare_elixir_s_p50": statistics.median(bare_s),
        "sandbox_s_p50": statistics.median(boxed_s),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one task per category (FIM items stay 50)")
    parser.add_argument("--fim-items", type=int, default=50, help="FIM items (default 50)")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    args = parser.parse_args()

    suite = load_suite("elixir")
    if args.quick:
        firsts = {}
        for task in suite.tasks:
            firsts.setdefault(task.category, task)
        suite = Suite(suite.name, suite.path, list(firsts.values()))
    sandbox = Sandbox()
    result: dict = {"isolation_warning": sandbox.warning}

    log("sandbox overhead: bare elixir vs sandbox on a reference program")
    reference = suite.tasks[0]
    result.update(
        sandbox_overhead(sandbox, reference.program(reference.canonical_solution), 3 if args.quick else 7)
    )

    backend = open_model(None, threads=args.threads)
    try:
        log(f"suite: {len(suite.tasks)} tasks, greedy")
        started = time.perf_counter()
        rows = generate(backend, suite, GenerationConfig(max_tokens=256 if args.quick else 384))
        execute(suite, rows, sandbox)
        wall = time.perf_counter() - started
        summary = summarize_tasks(rows, [1])
        result.update(
            pass_at_1=summary["pass@1"],
            compile_rate=summary["compile_rate"],
            suite_tasks=len(suite.tasks),
            suite_wall_s=wall,
            samples_per_s=len(rows) / wall,
        )
        log(f"pass@1 {summary['pass@1']:.3f}; FIM: {args.fim_items} holdout items, pipeline vs plain")
        items = fim.extract_items(FOLDER, split="holdout", count=args.fim_items, seed=1)
        runner = fim.FimRunner(backend, FOLDER)
        started = time.perf_counter()
        variants = [
            fim.variant("pipeline"),
            fim.variant("single-line", lines="single"),
            fim.variant("auto-lines", lines="auto"),
            fim.variant("indent-healing", heal_indent=True),
            fim.PLAIN,
        ]
        fim_rows = fim.run_variants(runner, items, variants)
        fim_wall = time.perf_counter() - started
    finally:
        backend.close()
    s = fim.summarize(fim_rows)
    pipeline, plain = s["pipeline"], s[fim.PLAIN.name]
    result.update(
        fim_items=len(items),
        fim_exact_match=pipeline["exact_match"],
        fim_edit_similarity=pipeline["edit_similarity"],
        plain_exact_match=plain["exact_match"],
        plain_edit_similarity=plain["edit_similarity"],
        fim_vs_plain_similarity=pipeline["edit_similarity"] / plain["edit_similarity"],
        single_line_edit_similarity=s["single-line"]["edit_similarity"],
        single_line_vs_plain_similarity=s["single-line"]["edit_similarity"] / plain["edit_similarity"],
        auto_lines_edit_similarity=s["auto-lines"]["edit_similarity"],
        auto_lines_vs_plain_similarity=s["auto-lines"]["edit_similarity"] / plain["edit_similarity"],
        indent_healing_edit_similarity=s["indent-healing"]["edit_similarity"],
        indent_healing_vs_plain_similarity=s["indent-healing"]["edit_similarity"] / plain["edit_similarity"],
        fim_wall_s=fim_wall,
        fim_s_per_item_p50=pipeline["seconds_median"],
        plain_s_per_item_p50=plain["seconds_median"],
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
