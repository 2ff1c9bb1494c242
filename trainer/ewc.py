"""Elastic weight consolidation between the two stages.

After stage 1 the diagonal of the Fisher information of the trainable parameters is estimated on stage-1
data (mean squared gradient of the language-model loss over a few batches), and the parameters at that
point, θ*, are kept. Stage 2 then minimises its loss plus λ·Σ F·(θ − θ*)², which holds the parameters that
matter for stage 1 near θ*.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass
class EwcState:
    """Fisher diagonal and anchor θ* per trainable parameter name, and the strength λ."""

    fisher: dict[str, torch.Tensor]
    anchor: dict[str, torch.Tensor]
    lam: float

    def penalty(self, model: torch.nn.Module) -> torch.Tensor:
        """λ·Σ F·(θ − θ*)² over the trainable parameters of `model` (a 0-d tensor with gradients)."""
        total = None
        for name, param in _trainable(model):
            if name in self.fisher:
                term = (self.fisher[name] * (param - self.anchor[name]) ** 2).sum()
                total = term if total is None else total + term
        if total is None:
            return torch.zeros(())
        return self.lam * total

    def save(self, path: Path) -> None:
        torch.save({"fisher": self.fisher, "anchor": self.anchor, "lam": self.lam}, path)

    @classmethod
    def load(cls, path: Path) -> EwcState:
        data = torch.load(path, map_location="cpu", weights_only=True)
        return cls(data["fisher"], data["anchor"], float(data["lam"]))


def _trainable(model: torch.nn.Module) -> Iterable[tuple[str, torch.nn.Parameter]]:
    # DDP wraps the model in `module.`: names are taken from the unwrapped model.
    inner = getattr(model, "module", model)
    return ((n, p) for n, p in inner.named_parameters() if p.requires_grad)


def estimate_fisher(model: torch.nn.Module, batches: Iterable[dict[str, Any]], lam: float) -> EwcState:
    """Mean squared gradients of the LM loss over `batches`, and θ* = the current parameters."""
    was_training = model.training
    model.eval()  # no dropout: the Fisher of the model as it is
    params = dict(_trainable(model))
    fisher = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    n = 0
    device = next(iter(params.values())).device
    for batch in batches:
        model.zero_grad(set_to_none=True)
        loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
        loss.backward()
        for name, p in params.items():
            if p.grad is not None:
                fisher[name] += p.grad.detach().float() ** 2
        n += 1
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    fisher = {k: v / max(n, 1) for k, v in fisher.items()}
    anchor = {k: p.detach().clone() for k, p in params.items()}
    return EwcState(fisher, anchor, lam)
