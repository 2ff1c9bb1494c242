"""Warmup + cosine per stage, each stage from its own learning rate: the rates the run logged."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import get_cosine_schedule_with_warmup

from trainer.run import train


def expected(lr: float, steps: int, warmup: int) -> list[float]:
    """transformers' cosine-with-warmup schedule, as the Trainer applies it: the rate each step ran at."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = get_cosine_schedule_with_warmup(opt, warmup, steps)
    rates = []
    for _ in range(steps):
        rates.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return rates


def test_each_stage_warms_up_then_decays_on_a_cosine(tiny_cfg):
    cfg = tiny_cfg(
        seq_len=32,
        batch_size=1,
        stage1_steps=10,
        stage2_steps=5,
        stage1_lr=1e-3,
        stage2_lr=2e-4,
        warmup_ratio=0.2,
        ewc_lambda=0.0,
        long_sequences="drop",
        save_steps=100,
        eval_steps=100,
    )
    run_dir = train(cfg, progress=False)
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    logged = {s: [r["learning_rate"] for r in rows if r["stage"] == s and "loss" in r] for s in (1, 2)}
    assert logged[1] == pytest.approx(expected(1e-3, 10, 2), rel=1e-6)
    assert logged[2] == pytest.approx(expected(2e-4, 5, 1), rel=1e-6)
