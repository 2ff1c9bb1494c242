"""The fine-tuning loop on the default model, measured against the base model in one run.

corpus (built if missing) -> `potion train --config configs/qwen-coder-0.5b-cpu.yaml` -> `potion export RUN
--quant q4_k_m` -> `potion eval gain qwen2.5-coder-0.5b TUNED:q4_k_m`. The base (the default Q4_K_M model) is
the baseline: both are measured on the same held-out Elixir, general code, infills and suite in this run
(the base's numbers are stored and reused by a later run on the same data and settings).

`--quick` shortens training to about a third of the config's steps (about 10 minutes here) and the
measurement sets; without it the config runs as shipped (at most 30 minutes of training).

    .venv/bin/python bench/finetune_gain.py --quick

Last line JSON: elixir_ppl_ratio, general_ppl_ratio, fim_exact_base, fim_exact_tuned, pass_at_1_base,
pass_at_1_tuned, train_minutes (and where the report is).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "configs/qwen-coder-0.5b-cpu.yaml"
CORPUS_CONFIG = "configs/corpus/elixir-default.yaml"
BASE = "qwen2.5-coder-0.5b"


def potion(*args: str) -> str:
    """Runs one `potion` command (its progress bars go to the terminal); returns its stdout."""
    cmd = [sys.executable, "-m", "potion.cli", *args]
    print("$ potion " + " ".join(args), file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"potion {args[0]} failed with exit code {proc.returncode}")
    return proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a shortened run (about 10 min of training)")
    parser.add_argument("--corpus", type=Path, default=ROOT / ".cache" / "corpus" / "elixir-default")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: .cache/bench/...)")
    parser.add_argument("--set", action="append", default=[], help="extra `potion train --set` overrides")
    args = parser.parse_args()

    label = "quick" if args.quick else "full"
    out = args.out or ROOT / ".cache" / "bench" / f"finetune-gain-{label}"
    if not (args.corpus / "manifest.json").is_file():
        potion("corpus", "build", "--config", CORPUS_CONFIG, "--out", str(args.corpus))
    overrides = [f"data={args.corpus}", f"name=finetune-gain-{label}", *args.set]
    if args.quick:
        import yaml

        cfg = yaml.safe_load((ROOT / CONFIG).read_text())
        overrides += [
            f"stage1_steps={max(1, cfg['stage1_steps'] // 3)}",
            f"stage2_steps={max(1, cfg['stage2_steps'] // 3)}",
        ]
    train_args = ["train", "--config", CONFIG]
    for item in overrides:
        train_args += ["--set", item]
    started = time.perf_counter()
    run_dir = Path(potion(*train_args).strip().splitlines()[-1])
    train_wall = time.perf_counter() - started
    name = f"finetune-gain-{label}"
    potion("export", str(run_dir), "--quant", "q4_k_m", "--name", name)
    eval_args = ["eval", "gain", BASE, f"{name}:q4_k_m", "--corpus", str(args.corpus), "--run", str(run_dir)]
    eval_args += ["--out", str(out)]
    if args.quick:
        eval_args += ["--ppl-docs", "32", "--fim-items", "40", "--max-tokens", "256"]
    summary = json.loads(potion(*eval_args).strip().splitlines()[-1])
    summary.update(
        train_command_minutes=train_wall / 60,
        report=str(out / "report.md"),
        run_dir=str(run_dir),
        quick=args.quick,
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
