"""One training run, start to finish: plan, base model, data, stage 1, EWC, stage 2, adapter, report.

The run directory (`output_dir/name`) holds config.yaml, base.json (the base model and its weights hash: a
resume on another base is refused), metrics.jsonl, checkpoints/step-N/, stage1/ (the EWC state), adapter/
with potion_adapter.json, loss.png and report.md. Under torchrun / accelerate launch
every rank runs this same function; only rank 0 writes the run's files.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from potion.errors import PotionError
from trainer import adapters, checkpoints, data, planner
from trainer.attempts import attempt_walls, begin_attempt, end_attempt, read_metrics
from trainer.config import TrainConfig, save_config
from trainer.errors import CheckpointError, ConfigError, MemoryPlanError, TrainerError
from trainer.model import BaseModel, load_model, load_tokenizer, resolve_base
from trainer.report import (
    MetricsLog,
    RichProgress,
    plot_losses,
    stage_summary,
    truncate_metrics,
    write_report,
)

BASE_FILE = "base.json"


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def barrier() -> None:
    """Waits for every rank of a distributed run (nothing to wait for in a single process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


@dataclass
class Datasets:
    """Rows of every split the run uses, tokenized (data.py)."""

    stage1_train: list[dict] = field(default_factory=list)
    general_replay: list[dict] = field(default_factory=list)  # part of stage1_train, counted apart
    stage1_eval: list[dict] = field(default_factory=list)
    stage2_train: list[dict] = field(default_factory=list)
    stage2_eval: list[dict] = field(default_factory=list)

    def stats(self) -> dict[str, dict[str, int]]:
        return {name: data.token_stats(rows) for name, rows in vars(self).items() if rows}


def prepare_data(cfg: TrainConfig, tokenizer: Any) -> Datasets:
    spec = data.FimSpec(data.fim_template_for(tokenizer), cfg.fim_rate, cfg.fim_spm_rate, cfg.fim_granularity)
    out = Datasets()
    if cfg.stage1_steps or cfg.replay_fraction or cfg.ewc_lambda:
        train = [r["text"] for r in data.read_split(cfg.data, "stage1", "train", limit=cfg.max_train_rows)]
        out.stage1_train = data.stage1_rows(train, tokenizer, cfg.seq_len, spec, seed=cfg.seed)
        if cfg.general_replay_fraction:
            from corpus.general import general_code

            general = [text for _name, text in general_code("train")]
            pool = data.stage1_rows(general, tokenizer, cfg.seq_len, spec, seed=cfg.seed + 2)
            rng = random.Random(cfg.seed)
            out.general_replay = data.replay_rows(
                len(out.stage1_train), pool, cfg.general_replay_fraction, rng
            )
            out.stage1_train = out.stage1_train + out.general_replay
            rng.shuffle(out.stage1_train)
        val = [r["text"] for r in data.read_split(cfg.data, "stage1", "validation", limit=cfg.max_eval_rows)]
        # Evaluation sees the same FIM mix as training, with its own seed.
        out.stage1_eval = data.stage1_rows(
            val, tokenizer, cfg.seq_len, spec, seed=cfg.seed + 1, required=False
        )
    if cfg.stage2_steps:
        convs = [
            r["messages"] for r in data.read_split(cfg.data, "stage2", "train", limit=cfg.max_train_rows)
        ]
        rows = data.stage2_rows(convs, tokenizer, cfg.seq_len, long_sequences=cfg.long_sequences)
        out.stage2_train = data.with_replay(rows, out.stage1_train, cfg.replay_fraction, seed=cfg.seed)
        val = [
            r["messages"] for r in data.read_split(cfg.data, "stage2", "validation", limit=cfg.max_eval_rows)
        ]
        out.stage2_eval = data.stage2_rows(val, tokenizer, cfg.seq_len, long_sequences="drop", required=False)
    for name in ("stage1_eval", "stage2_eval"):
        stage = name[:6]
        if getattr(out, name) == [] and getattr(cfg, f"{stage}_steps"):
            warnings.warn(
                f"{cfg.data}: the validation split has less than one {cfg.seq_len}-token row; {stage} runs "
                "without evaluation (add a second project to the corpus, or a validation_fraction)",
                stacklevel=2,
            )
    return out


def check_memory(cfg: TrainConfig) -> planner.MemoryPlan | None:
    """The planner's verdict before anything loads: MemoryPlanError when the run cannot fit the memory given
    (`memory_gb`, else the GPU's); on CPU without `memory_gb`, a warning when it needs more than the RAM."""
    budget = planner.device_memory_bytes(cfg)
    if budget is None:
        ram = planner.host_memory_bytes()
        try:
            plan = planner.plan(cfg) if ram else None
        except PotionError:  # no shape without downloading (or no model): loading says what is wrong
            return None
        if plan is not None and plan.total_bytes > ram:
            warnings.warn(
                f"the plan needs {plan.total_bytes / 2**30:.1f} GiB, more than this machine's "
                f"{ram / 2**30:.1f} GiB of RAM: expect swapping or an out-of-memory kill (lower "
                "batch_size or seq_len, or set memory_gb to make this an error; see `potion train plan`)",
                stacklevel=2,
            )
        return plan
    plan = planner.plan(cfg)
    if plan.total_bytes > budget:
        raise MemoryPlanError(
            f"the plan needs {plan.total_bytes / 2**30:.1f} GiB, "
            f"more than the {budget / 2**30:.1f} GiB given",
            hint="lower batch_size or seq_len, keep gradient_checkpointing on, or see `potion train plan`",
        )
    return plan


def _stage(
    cfg: TrainConfig,
    *,
    stage: int,
    model: Any,
    tokenizer: Any,
    run_dir: Path,
    train_rows: list[dict],
    eval_rows: list[dict],
    lr: float,
    steps: int,
    offset: int,
    resume_from: checkpoints.Checkpoint | None,
    ewc: Any = None,
    progress: bool = True,
    attempt: int = 1,
) -> Any:
    """Run one stage with the Trainer; returns the Trainer (its state has the logs)."""
    from datasets import Dataset
    from transformers import PrinterCallback

    from trainer.hf_trainer import PotionTrainer, training_arguments

    root = run_dir / "checkpoints"
    staging = root / checkpoints.STAGING
    args = training_arguments(cfg, staging=staging, lr=lr, steps=steps, has_eval=bool(eval_rows))
    main = is_main_process()
    trainer = PotionTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        data_collator=data.PadCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
        callbacks=[
            MetricsLog(
                run_dir / "metrics.jsonl" if main else None, stage=stage, offset=offset, attempt=attempt
            ),
            checkpoints.PublishCheckpoints(root, stage=stage, offset=offset, keep=cfg.keep_checkpoints),
            RichProgress(f"stage {stage}", enabled=progress),
        ],
        lr_multipliers=cfg.lr_multipliers,
        ewc=ewc,
    )
    trainer.remove_callback(PrinterCallback)  # RichProgress and metrics.jsonl instead of printed dicts
    if cfg.fsdp and not trainer.is_fsdp_enabled:
        # transformers enables FSDP only on accelerators; elsewhere (CPU) it runs DDP without a word.
        kind = trainer.accelerator.distributed_type.value
        warnings.warn(
            f"fsdp: true, but FSDP is not active here (distributed type {kind}: FSDP needs GPUs under "
            "torchrun or accelerate launch); every process holds the whole model, as with DDP",
            stacklevel=2,
        )
    try:
        trainer.train(resume_from_checkpoint=str(resume_from.path) if resume_from else None)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            shutil.rmtree(staging, ignore_errors=True)
            kept = checkpoints.step_dirs(root)
            raise CheckpointError(
                f"the disk is full: checkpoint at step {offset + trainer.state.global_step} not written",
                hint=f"free space and --resume ({'from ' + kept[0].name if kept else 'no checkpoint yet'})",
            ) from exc
        raise
    # No trainer.evaluate() here: the Trainer evaluates after the last step itself (step-based strategy).
    # Every rank lists the staging folder at the end of train(): remove it only once all have finished.
    barrier()
    if main:
        shutil.rmtree(staging, ignore_errors=True)
    return trainer


def _adapter_id(name: str, adapter_dir: Path) -> str:
    weights = adapter_dir / "adapter_model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:10]
    return f"{name}-{digest}"


def train(cfg: TrainConfig, *, resume: bool = False, progress: bool = True) -> Path:
    """Run `cfg`; returns the run directory. `resume` continues from its newest valid checkpoint."""
    from trainer.ewc import EwcState, estimate_fisher

    run_dir = Path(cfg.output_dir).expanduser() / cfg.name
    resume_from = checkpoints.latest_valid(run_dir / "checkpoints") if resume else None
    if not resume and is_main_process() and run_dir.exists() and any(run_dir.iterdir()):
        raise TrainerError(
            f"run directory {run_dir} already exists: nothing was overwritten",
            hint="pass --resume to continue it, or --set name=NEW for a new run",
        )
    if cfg.fsdp and int(os.environ.get("WORLD_SIZE", "1")) < 2:
        raise ConfigError(
            "fsdp: true shards the model across processes, but this is a single process",
            hint="launch it on GPUs with `torchrun --nproc_per_node=N -m potion.cli train …` "
            "(or accelerate launch), or --set fsdp=false",
        )
    ewc_path = run_dir / "stage1" / "ewc.pt"
    # Stage 1 does not run (none configured, or resuming in stage 2): stage 2's EWC state must be on disk.
    skip_stage1 = not cfg.stage1_steps or bool(resume_from and resume_from.stage == 2)
    if skip_stage1 and cfg.ewc_lambda > 0 and cfg.stage2_steps and not ewc_path.is_file():
        raise CheckpointError(
            f"{ewc_path} is missing: stage 2 cannot resume with EWC (nothing in the run was changed)",
            hint="restore it, or --set ewc_lambda=0 to resume without EWC",
        )
    check_memory(cfg)
    started, started_at = time.perf_counter(), time.time()
    base: BaseModel = resolve_base(cfg.model, progress=progress)
    if resume_from is not None and (run_dir / BASE_FILE).is_file():  # checkpoints are LoRA deltas on a base
        trained_on = json.loads((run_dir / BASE_FILE).read_text())
        adapters.check_base(
            trained_on,
            base.sha256,
            what=f"run {cfg.name} ({resume_from.path.name})",
            hint=f"resume on its base (--set model={trained_on['spec']}) or start a new run (--set name=NEW)",
        )
    tokenizer = load_tokenizer(base.hf_dir)
    datasets = prepare_data(cfg, tokenizer)
    model = load_model(cfg, base.hf_dir)
    main = is_main_process()
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
        (run_dir / BASE_FILE).write_text(json.dumps(base.to_dict(), indent=2) + "\n")
        if resume_from:
            truncate_metrics(run_dir / "metrics.jsonl", resume_from.step)
    attempt = begin_attempt(run_dir, resume_from.step if resume_from else None, started_at) if main else 0

    ewc = None
    if not skip_stage1:
        _stage(
            cfg,
            stage=1,
            model=model,
            tokenizer=tokenizer,
            run_dir=run_dir,
            train_rows=datasets.stage1_train,
            eval_rows=datasets.stage1_eval,
            lr=cfg.stage1_lr,
            steps=cfg.stage1_steps,
            offset=0,
            resume_from=resume_from,
            progress=progress,
            attempt=attempt,
        )
        resume_from = None
        if cfg.stage2_steps and cfg.ewc_lambda > 0:
            collate = data.PadCollator(tokenizer.pad_token_id)
            rows = datasets.stage1_train
            batches = (
                collate(rows[i : i + cfg.batch_size])
                for i in range(0, min(len(rows), cfg.ewc_batches * cfg.batch_size), cfg.batch_size)
            )
            ewc = estimate_fisher(model, batches, cfg.ewc_lambda)
            if main:
                ewc_path.parent.mkdir(exist_ok=True)
                ewc.save(ewc_path)
    elif cfg.ewc_lambda > 0 and cfg.stage2_steps:
        ewc = EwcState.load(ewc_path)  # checked to exist before anything was loaded

    if cfg.stage2_steps:
        _stage(
            cfg,
            stage=2,
            model=model,
            tokenizer=tokenizer,
            run_dir=run_dir,
            train_rows=datasets.stage2_train,
            eval_rows=datasets.stage2_eval,
            lr=cfg.stage2_lr,
            steps=cfg.stage2_steps,
            offset=cfg.stage1_steps,
            resume_from=resume_from,
            ewc=ewc,
            progress=progress,
            attempt=attempt,
        )
    if main:
        end_attempt(run_dir, attempt)
        finish(cfg, run_dir, model, tokenizer, base, datasets, wall_s=time.perf_counter() - started)
    return run_dir


def finish(
    cfg: TrainConfig,
    run_dir: Path,
    model: Any,
    tokenizer: Any,
    base: BaseModel,
    datasets: Datasets,
    *,
    wall_s: float,
) -> adapters.AdapterRecord:
    """Adapter + sidecar, registry, loss.png, report.md."""
    adapter_dir = run_dir / "adapter"
    model.save_pretrained(adapter_dir)
    tokenizer.save_pretrained(adapter_dir)
    metrics = read_metrics(run_dir / "metrics.jsonl")
    summaries = {str(s): stage_summary(metrics, s) for s in (1, 2) if any(m["stage"] == s for m in metrics)}
    eval_metrics = {
        f"stage{s}_{k}": v
        for s, summ in summaries.items()
        for k, v in summ.items()
        if k in ("eval_loss", "eval_perplexity", "last_loss")
    }
    adapters.write_sidecar(
        adapter_dir,
        adapter_id=_adapter_id(cfg.name, adapter_dir),
        run_dir=run_dir.resolve(),
        base=base.to_dict(),
        metrics=eval_metrics,
    )
    record = adapters.register(adapter_dir)
    if metrics:
        plot_losses(metrics, run_dir / "loss.png")
    tokens = sum(s.get("tokens", 0) for s in summaries.values())
    attempts = attempt_walls(run_dir, metrics)
    if len(attempts) > 1:  # a resumed run: its wall time is every attempt's
        wall_s = sum(a["wall_s"] for a in attempts)
    write_report(
        run_dir,
        config=cfg.to_dict(),
        data_stats=datasets.stats(),
        summaries=summaries,
        wall_s=wall_s,
        tokens=tokens,
        base=base.to_dict(),
        attempts=attempts,
    )
    return record
