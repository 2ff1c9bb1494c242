"""Discriminative learning rates: trainable parameters split into embeddings, early layers, late layers and
head, each with its own multiplier of the stage's learning rate.

Layers below half the depth are "early", the rest "late"; anything outside the decoder layers that is still
trainable (final norm) joins "late". Empty groups are left out.
"""

from __future__ import annotations

import re
from typing import Any

_LAYER = re.compile(r"\.layers\.(\d+)\.")


def group_of(name: str, n_layers: int) -> str:
    """The learning-rate group of a parameter, from its name."""
    if "embed_tokens" in name:
        return "embeddings"
    if "lm_head" in name:
        return "head"
    match = _LAYER.search(name)
    if match and int(match.group(1)) < (n_layers + 1) // 2:
        return "early"
    return "late"


def param_groups(
    model: Any, base_lr: float, multipliers: dict[str, float], *, weight_decay: float = 0.0
) -> list[dict[str, Any]]:
    """Optimizer parameter groups (torch keeps the extra `name` key) for the trainable parameters."""
    n_layers = model.config.num_hidden_layers
    buckets: dict[str, list] = {"embeddings": [], "early": [], "late": [], "head": []}
    for name, param in model.named_parameters():
        if param.requires_grad:
            buckets[group_of(name, n_layers)].append(param)
    return [
        {"name": g, "params": ps, "lr": base_lr * multipliers.get(g, 1.0), "weight_decay": weight_decay}
        for g, ps in buckets.items()
        if ps
    ]


def describe_groups(groups: list[dict[str, Any]]) -> str:
    """The groups actually built, one line each: what the run prints before training."""
    lines = ["learning-rate groups:"]
    for g in groups:
        numel = sum(p.numel() for p in g["params"])
        lines.append(f"  {g['name']:<10} {len(g['params']):>4} tensors {numel:>12,} params  lr {g['lr']:.3g}")
    return "\n".join(lines)
