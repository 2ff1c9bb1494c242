"""The whole fine-tuning loop on the tiny config, through the commands a user types:

corpus from the fixture Mix project -> two-stage QLoRA (`potion train`) -> `potion export` (merged GGUF,
Q8_0, LoRA GGUF, registered) -> llama.cpp loads the exports by name -> `potion eval gain` writes the
base-vs-tuned report against the fine-tuning targets. Each step runs as its own `potion` process, as in
the README's "Train on your own code".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.elixir]

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "mix_sample"


def potion(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "potion.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"potion {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_corpus_train_export_eval_on_the_tiny_config(tmp_path: Path) -> None:
    env = dict(os.environ)
    env.update(
        POTION_HOME=str(tmp_path / "home"),
        POTION_CONVERTERS_DIR=str(REPO / ".cache" / "llama-cpp-converters"),
        PYTHONPATH=str(REPO),
    )

    # 1. corpus from a small Mix project
    corpus_cfg = tmp_path / "corpus.yaml"
    corpus_cfg.write_text(
        yaml.safe_dump(
            {
                "name": "fixture",
                "sources": [{"kind": "dir", "path": str(FIXTURE), "name": "sample"}],
                "split": {"validation_projects": ["tiny_dep"], "validation_fraction": 0.0},
                "decontaminate": {"suites": True},
                "cache": str(tmp_path / "corpus-cache"),
                "workers": 1,
            }
        )
    )
    data = tmp_path / "corpus"
    potion(env, "corpus", "build", "--config", str(corpus_cfg), "--out", str(data), "--no-progress")
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["counts"]["stage1"]["train"] > 0 and manifest["counts"]["stage2"]["train"] > 0

    # 2. two-stage QLoRA on the tiny Mistral (Devstral's architecture and tokenizer)
    out = potion(
        env,
        "train",
        "--config",
        "configs/tiny.yaml",
        "--set",
        f"data={data}",
        "--set",
        f"output_dir={tmp_path / 'runs'}",
        "--set",
        "seq_len=128",  # room for the fixture's shorter conversations; its 2 held-out files fill one row
        "--set",
        "long_sequences=drop",
        "--no-progress",
    )
    run_dir = Path(out.strip().splitlines()[-1])
    sidecar = json.loads((run_dir / "adapter" / "potion_adapter.json").read_text())
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    stages = {m.get("stage") for m in metrics if "loss" in m}
    assert stages == {1, 2}, stages
    assert (run_dir / "report.md").is_file() and (run_dir / "loss.png").is_file()

    # 3. export: merged f16, Q8_0 and the LoRA GGUF, registered by name
    potion(env, "export", str(run_dir), "--quant", "q8_0", "--name", "loop-tiny", "--no-progress")
    listed = potion(env, "models", "list")
    assert "loop-tiny" in listed

    # 4. llama.cpp loads the exported file by its registry name
    ppl = json.loads(
        potion(
            env,
            "eval",
            "perplexity",
            str(FIXTURE / "lib"),
            "--model",
            "loop-tiny:q8_0",
            "--json",
            "--no-progress",
        )
    )
    assert ppl["perplexity"] > 1 and ppl["tokens"] > 0

    # 5. base vs tuned: the base converted alone, the tuned one as base + the exported LoRA (applied by
    #    llama.cpp at load time), measured against the fine-tuning targets (held-out Elixir and general-code
    #    perplexity, infills through the editor's pipeline, pass@1 on two tasks of the project's suite).
    from quantize.converters import fetch_converters, run_converter

    base_gguf = tmp_path / "base-f16.gguf"
    conv = fetch_converters(progress=False)
    run_converter(
        conv,
        conv.hf_to_gguf,
        [sidecar["base"]["hf_dir"], "--outfile", base_gguf, "--outtype", "f16"],
        progress=False,
    )
    suite = tmp_path / "two.jsonl"
    lines = (REPO / "evals" / "suites" / "elixir.jsonl").read_text().splitlines()[:2]
    suite.write_text("\n".join(lines) + "\n")
    report = tmp_path / "report"
    gain_args = [
        "gain",
        str(base_gguf),
        f"{base_gguf} + loop-tiny",
        "--corpus",
        str(data),
        "--fim-folder",
        str(FIXTURE),
        "--run",
        str(run_dir),
        "--suite",
        str(suite),
        "--ppl-docs",
        "2",
        "--window",
        "64",
        "--fim-items",
        "3",
        "--max-tokens",
        "16",
        "--out",
        str(report),
        "--no-progress",
    ]
    out = potion(env, "eval", *gain_args)
    summary = json.loads(out.strip().splitlines()[-1])
    assert set(summary) == {
        "elixir_ppl_ratio",
        "general_ppl_ratio",
        "fim_exact_base",
        "fim_exact_tuned",
        "pass_at_1_base",
        "pass_at_1_tuned",
        "train_minutes",
    }
    assert (
        summary["elixir_ppl_ratio"] > 0 and summary["general_ppl_ratio"] > 0 and summary["train_minutes"] > 0
    )
    document = json.loads((report / "gain.json").read_text())
    assert document["tuned"]["fim_items"] >= 1 and document["base"]["suite_tasks"] == 2
    text = (report / "report.md").read_text()
    assert "loop-tiny" in text and "| elixir_ppl |" in text and "training.md" in text
    assert (report / "gain.png").read_bytes()[:4] == b"\x89PNG" and (report / "loss.png").is_file()
    assert "base measured now; tuned measured now" in text

    # A second comparison re-uses both stored measurements and says which commit made them.
    again = potion(env, "eval", *gain_args)
    assert json.loads(again.strip().splitlines()[-1]) == summary
    assert "base stored earlier (commit `" in (report / "report.md").read_text()
