"""`potion train --config configs/NAME.yaml [--set key=value ...] [--resume]` and `potion train plan`."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from potion.cli_args import add_command, arg


@dataclass
class TrainArgs:
    config: Path = arg("training config (configs/*.yaml)")
    action: str = arg(
        "run: train (default); plan: print the memory plan only",
        positional=True,
        default="run",
        choices=("run", "plan"),
    )
    set: list[str] = arg(
        "override a config key: --set key=value (repeatable)", repeat=True, default_factory=list
    )
    resume: bool = arg("continue the run from its newest valid checkpoint", default=False)
    gpu_gb: float | None = arg("memory of the device to plan for, GiB (overrides memory_gb)", default=None)
    progress: bool = arg("progress bars", default=True)

    def __post_init__(self) -> None:
        if not self.config.is_file():
            raise ValueError(f"--config: no such file {self.config}")
        if self.gpu_gb is not None and self.gpu_gb <= 0:
            raise ValueError("--gpu-gb must be positive")


def train_command(args: TrainArgs) -> int:
    from trainer.config import load_config

    overrides = list(args.set)
    if args.gpu_gb is not None:
        overrides.append(f"memory_gb={args.gpu_gb}")
    cfg = load_config(args.config, overrides)
    if args.action == "plan":
        return plan_command(cfg)
    from trainer.run import train

    run_dir = train(cfg, resume=args.resume, progress=args.progress)
    print(run_dir)
    return 0


def plan_command(cfg) -> int:
    from trainer import planner

    plan = planner.plan(cfg)
    print(f"memory plan for {cfg.model} ({cfg.name})")
    budget = planner.device_memory_bytes(cfg)
    print(plan.table(budget / planner.GiB if budget else None))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(
        subparsers,
        "train",
        TrainArgs,
        train_command,
        help="two-stage QLoRA fine-tuning of a base model on a corpus (or `train plan`: memory plan)",
    )
