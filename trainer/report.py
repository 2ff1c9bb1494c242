"""What a run leaves for people: metrics.jsonl, a progress bar with tokens/s and ETA, loss.png, report.md."""

from __future__ import annotations

import json
import math
import resource
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from transformers import TrainerCallback

from trainer.errors import DivergedError


def peak_memory_bytes() -> int:
    """Peak resident memory of this process (and the GPU's peak allocation when there is one)."""
    import torch

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if torch.cuda.is_available():
        return max(rss, torch.cuda.max_memory_allocated())
    return rss


class MetricsLog(TrainerCallback):
    """Appends every Trainer log (loss, lr, grad norm, eval loss + perplexity, EWC penalty) as one JSON line
    with the stage and the step counted across stages; stops the run on a NaN/inf loss."""

    def __init__(self, path: Path | None, *, stage: int, offset: int, attempt: int = 1) -> None:
        self.path = path
        self.stage = stage
        self.offset = offset
        self.attempt = attempt

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        if "eval_loss" in logs:
            logs["eval_perplexity"] = math.exp(min(logs["eval_loss"], 50.0))
        record = {
            "stage": self.stage,
            "step": self.offset + state.global_step,
            "attempt": self.attempt,
            "time": round(time.time(), 3),
            **logs,
        }
        if self.path is not None and state.is_world_process_zero:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(loss):
            raise DivergedError(
                f"stage {self.stage} loss became {loss} at step {record['step']}: training stopped",
                hint="lower the learning rate (stage1_lr/stage2_lr) or raise warmup_ratio, then --resume",
            )
        return control


def truncate_metrics(path: Path, after_step: int) -> None:
    """Drop metrics logged after `after_step` (a resumed run logs those steps again)."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= after_step]
    path.write_text("".join(line + "\n" for line in kept))


class RichProgress(TrainerCallback):
    """One rich bar per stage on stderr: steps, loss, tokens/s and the time left."""

    def __init__(self, description: str, *, enabled: bool = True) -> None:
        self.description = description
        self.enabled = enabled
        self.progress = None
        self.started = 0.0
        self.tokens0 = 0

    def on_train_begin(self, args, state, control, **kwargs):
        if not (self.enabled and state.is_world_process_zero):
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  {task.fields[tps]} tok/s"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self.progress.start()
        self.task = self.progress.add_task(
            self.description, total=state.max_steps, completed=state.global_step, loss="-", tps="-"
        )
        self.started = time.perf_counter()
        self.tokens0 = state.num_input_tokens_seen

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            elapsed = max(time.perf_counter() - self.started, 1e-9)
            tps = (state.num_input_tokens_seen - self.tokens0) / elapsed
            self.progress.update(self.task, completed=state.global_step, tps=f"{tps:,.0f}")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is not None and logs and "loss" in logs:
            self.progress.update(self.task, loss=f"{logs['loss']:.4f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def plot_losses(metrics: list[dict[str, Any]], path: Path) -> None:
    """Training loss per step (both stages) and evaluation loss, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for stage in sorted({m["stage"] for m in metrics}):
        train = [(m["step"], m["loss"]) for m in metrics if m["stage"] == stage and "loss" in m]
        evals = [(m["step"], m["eval_loss"]) for m in metrics if m["stage"] == stage and "eval_loss" in m]
        if train:
            ax.plot(*zip(*train, strict=True), label=f"stage {stage} train")
        if evals:
            ax.plot(*zip(*evals, strict=True), "o--", label=f"stage {stage} eval")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def stage_summary(metrics: list[dict[str, Any]], stage: int) -> dict[str, Any]:
    rows = [m for m in metrics if m["stage"] == stage]
    losses = [m["loss"] for m in rows if "loss" in m]
    evals = [m for m in rows if "eval_loss" in m]
    final = [m for m in rows if "train_loss" in m]  # the Trainer's closing summary
    out: dict[str, Any] = {"steps_logged": len(losses)}
    if losses:
        out.update(first_loss=losses[0], last_loss=losses[-1], min_loss=min(losses))
    if evals:
        out.update(eval_loss=evals[-1]["eval_loss"], eval_perplexity=evals[-1]["eval_perplexity"])
    if final:
        # A resumed stage has one Trainer per attempt, each timing only its own part.
        by_attempt: dict[Any, float] = {}
        for m in rows:
            if "train_runtime" in m:
                key = m.get("attempt")
                by_attempt[key] = max(by_attempt.get(key, 0.0), m["train_runtime"] or 0.0)
        runtime = sum(by_attempt.values())
        out["train_runtime_s"] = runtime
        out["tokens"] = final[-1].get("num_input_tokens_seen", 0)
        out["tokens_per_s"] = out["tokens"] / runtime if runtime else None
    return out


def write_report(
    run_dir: Path,
    *,
    config: dict[str, Any],
    data_stats: dict[str, Any],
    summaries: dict[str, dict[str, Any]],
    wall_s: float,
    tokens: int,
    base: dict[str, Any],
    attempts: list[dict[str, Any]] | None = None,
) -> Path:
    """report.md: config, data, losses, eval, wall time (every attempt of a resumed run), peak memory,
    tokens/s."""
    lines = [f"# Training run `{run_dir.name}`", ""]
    wall = f"- wall time: {wall_s:.1f} s"
    if attempts and len(attempts) > 1:
        parts = ", ".join(
            f"{a['wall_s']:.0f} s"
            + ("" if a["completed"] else " (stopped)")
            + (f" from step {a['resumed_from']}" if a.get("resumed_from") else "")
            for a in attempts
        )
        wall = f"- wall time: {wall_s:.1f} s over {len(attempts)} attempts ({parts})"
    lines += [
        f"- base model: `{base['spec']}` ({base['architecture']}, weights sha256 `{base['sha256'][:16]}…`)",
        wall,
        f"- peak memory: {peak_memory_bytes() / 2**30:.2f} GiB (this attempt)",
        f"- tokens seen: {tokens:,}",
        f"- tokens/s (overall): {tokens / max(wall_s, 1e-9):,.1f}",
        f"- python: {sys.version.split()[0]}",
        "",
        "## Data",
        "",
        "| split | rows | tokens | target tokens |",
        "|---|---:|---:|---:|",
    ]
    for name, st in data_stats.items():
        lines.append(f"| {name} | {st['rows']:,} | {st['tokens']:,} | {st['target_tokens']:,} |")
    lines += [
        "",
        "## Losses and evaluation",
        "",
        "| stage | first | last | min | eval loss | eval ppl | tok/s |",
    ]
    lines.append("|---|---:|---:|---:|---:|---:|---:|")

    def fmt(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, float) else ("-" if v is None else str(v))

    for stage, s in summaries.items():
        lines.append(
            f"| {stage} | {fmt(s.get('first_loss'))} | {fmt(s.get('last_loss'))} | {fmt(s.get('min_loss'))} "
            f"| {fmt(s.get('eval_loss'))} | {fmt(s.get('eval_perplexity'))} | {fmt(s.get('tokens_per_s'))} |"
        )
    lines += [
        "",
        "![loss](loss.png)",
        "",
        "## Config",
        "",
        "```yaml",
        yaml.safe_dump(config, sort_keys=False),
    ]
    lines += ["```", ""]
    path = run_dir / "report.md"
    path.write_text("\n".join(lines))
    return path
