"""Training throughput: `potion train` against a plain transformers Trainer + peft script, and packing.

Both sides train the same tiny model (random Mistral with Devstral's Tekken tokenizer, NF4 + LoRA) on the
same packed stage-1 rows with the same hyper-parameters, for the same number of steps, in this one run:

- tokens_per_s: potion's stage 1 (its Trainer subclass, LR groups, callbacks, checkpoint publishing off the
  timed path as both save nothing), from the Trainer's own train_runtime;
- baseline_tokens_per_s: `Trainer(model=get_peft_model(...), train_dataset=rows)` written by hand;
- ratio = tokens_per_s / baseline_tokens_per_s (target >= 0.95);
- packing_gain: real (non-padding) tokens per second when the corpus's files are packed to seq_len, over
  the same files one per row with dynamic padding (target >= 1.5), on the corpus's own length distribution;
- packing_gain_bound: the most packing could gain on those rows (padded positions computed over real tokens
  on the padded side), and files_filling_a_row: the share of them that fill a row by themselves.

Each side runs twice, in the order potion, baseline, baseline, potion, and its faster run counts: the
first training in a process pays one-time costs (thread pools, allocator warm-up) that would otherwise
fall on whichever side runs first, and the mirrored order cancels a machine that speeds up or slows down
during the run (other work finishing or starting). Sequences are 1,024 tokens in both modes, a realistic
training length for the corpus's length distribution (`--seq-len` to change); `--quick` only runs fewer steps.

The corpus is `.cache/corpus/elixir-default` when it has been built, else Elixir's own source files.

    .venv/bin/python bench/train_throughput.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]


def corpus_texts(limit: int) -> tuple[list[str], str]:
    corpus = ROOT / ".cache" / "corpus" / "elixir-default"
    if (corpus / "stage1" / "train.parquet").is_file():
        from trainer.data import read_split

        return [r["text"] for r in read_split(corpus, "stage1", "train", limit=limit)], str(corpus)
    src = ROOT / ".cache" / "elixir-src" / "lib"
    files = sorted(src.rglob("*.ex"))[:limit]
    if not files:
        sys.exit("no corpus: build one (`potion corpus build`) or run scripts/fetch-elixir-source.sh")
    return [f.read_text(errors="replace") for f in files], str(src)


def real_tokens(rows: list[dict], pad_id: int) -> int:
    return sum(sum(1 for t in r["input_ids"] if t != pad_id) for r in rows)


def baseline_run(model_dir: str, rows: list[dict], cfg, out: Path) -> float:
    """A plain transformers Trainer + peft script; returns its train_runtime."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, Trainer, TrainingArguments, set_seed

    from trainer.data import PadCollator

    bnb = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.float32,
    )
    model = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=bnb, dtype=torch.float32)
    model.config.use_cache = False
    model = prepare_model_for_kbit_training(
        model, use_gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": False}
    )
    set_seed(cfg.seed)
    model = get_peft_model(
        model,
        LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=0.0,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        ),
    )
    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.stage1_lr,
        lr_scheduler_type="cosine",
        max_steps=cfg.stage1_steps,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        use_cpu=True,
        seed=cfg.seed,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=Dataset.from_list(rows), data_collator=PadCollator(0)
    )
    return trainer.train().metrics["train_runtime"]


def potion_run(cfg, rows: list[dict], tokenizer) -> float:
    """potion's stage 1 on the same rows; returns the Trainer's train_runtime."""
    from trainer import run

    run_dir = Path(cfg.output_dir) / cfg.name
    run_dir.mkdir(parents=True)
    model = run.load_model(cfg, cfg.model)
    trainer = run._stage(
        cfg,
        stage=1,
        model=model,
        tokenizer=tokenizer,
        run_dir=run_dir,
        train_rows=rows,
        eval_rows=[],
        lr=cfg.stage1_lr,
        steps=cfg.stage1_steps,
        offset=0,
        resume_from=None,
        progress=False,
    )
    return trainer.state.log_history[-1]["train_runtime"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few steps, short sequences")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--seq-len", type=int, default=1024)
    opts = parser.parse_args()
    steps = opts.steps or (8 if opts.quick else 30)
    seq_len = opts.seq_len

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("POTION_HOME", str(ROOT / ".cache" / "bench-home"))
        from trainer.config import TrainConfig
        from trainer.data import FimSpec, fim_template_for, padded_rows, stage1_rows
        from trainer.model import load_tokenizer, tiny_dir

        model_dir = str(tiny_dir("mistral"))
        tokenizer = load_tokenizer(model_dir)
        pad = tokenizer.pad_token_id
        texts, source = corpus_texts(limit=400)
        cfg = TrainConfig(
            model=model_dir,
            data=source,
            output_dir=tmp,
            name="bench",
            seq_len=seq_len,
            batch_size=2,
            stage1_steps=steps,
            stage2_steps=0,
            lora_r=8,
            lora_alpha=16,
            lora_dropout=0.0,
            save_steps=10_000,
            eval_steps=10_000,
            stage1_lr=1e-3,
            warmup_ratio=0.0,
        )
        spec = FimSpec(fim_template_for(tokenizer), rate=0.0)
        packed = stage1_rows(texts, tokenizer, seq_len, spec, seed=0)
        used = packed[: steps * cfg.batch_size]
        tokens = real_tokens(used, pad)
        potion_runs, baseline_runs = [], []
        for i, order in enumerate([("potion", "baseline"), ("baseline", "potion")]):  # ABBA
            for side in order:
                if side == "potion":
                    cfg.name = f"bench-{i}"
                    potion_runs.append(potion_run(cfg, used, tokenizer))
                else:
                    baseline_runs.append(baseline_run(model_dir, used, cfg, Path(tmp) / f"baseline-{i}"))
        potion_s, baseline_s = min(potion_runs), min(baseline_runs)

        padded = padded_rows(texts, tokenizer, seq_len)[: steps * cfg.batch_size]
        padded_s = min(baseline_run(model_dir, padded, cfg, Path(tmp) / f"padded-{i}") for i in range(2))
        lengths = [len(r["input_ids"]) for r in padded]
        padded_tokens = sum(lengths)
        # What packing can gain at most here: the padded side's computed positions (each batch padded to
        # its longest row) over its real tokens. Files that fill a row alone leave packing nothing to gain.
        bs = cfg.batch_size
        slots = sum(bs * max(lengths[i : i + bs]) for i in range(0, len(lengths), bs))

    result = {
        "bench": "train_throughput",
        "quick": opts.quick,
        "corpus": source,
        "seq_len": seq_len,
        "steps": steps,
        "potion_runs_s": [round(x, 2) for x in potion_runs],
        "baseline_runs_s": [round(x, 2) for x in baseline_runs],
        "tokens_per_s": round(tokens / potion_s, 1),
        "baseline_tokens_per_s": round(tokens / baseline_s, 1),
        "ratio": round(baseline_s / potion_s, 3),
        "packed_real_tokens_per_s": round(tokens / baseline_s, 1),
        "padded_real_tokens_per_s": round(padded_tokens / padded_s, 1),
        "packing_gain": round((tokens / baseline_s) / (padded_tokens / padded_s), 3),
        "packing_gain_bound": round(slots / padded_tokens, 3),
        "files_filling_a_row": round(sum(n >= seq_len for n in lengths) / len(lengths), 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
