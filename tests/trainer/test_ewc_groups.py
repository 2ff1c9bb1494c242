"""EWC (λ = 0 changes nothing, a large λ holds θ*) and the discriminative learning-rate groups."""

from __future__ import annotations

import random

import pytest
import torch
from datasets import Dataset

from trainer.config import TrainConfig
from trainer.data import PadCollator, pack
from trainer.ewc import EwcState, estimate_fisher
from trainer.groups import describe_groups, group_of, param_groups
from trainer.hf_trainer import PotionTrainer, training_arguments
from trainer.model import load_model


def trainable(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.fixture(scope="module")
def setup(tiny_models, tmp_path_factory):
    cfg = TrainConfig(
        model=str(tiny_models("mistral")),
        data="unused",
        lora_r=4,
        lora_dropout=0.0,
        seq_len=32,
        batch_size=2,
        save_steps=1000,
        eval_steps=1000,
        warmup_ratio=0.0,
    )
    model = load_model(cfg, cfg.model)
    rng = random.Random(0)
    docs = [[rng.randrange(1000, 5000) for _ in range(rng.randrange(5, 40))] for _ in range(30)]
    rows = list(pack(docs, cfg.seq_len))[:6]
    return cfg, model, trainable(model), rows, tmp_path_factory.mktemp("ewc")


def run(setup, ewc: EwcState | None, steps: int = 3) -> dict[str, torch.Tensor]:
    cfg, model, start, rows, tmp = setup
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in start:
                p.copy_(start[name])
    trainer = PotionTrainer(
        model=model,
        args=training_arguments(cfg, staging=tmp, lr=5e-2, steps=steps, has_eval=False),
        train_dataset=Dataset.from_list(rows),
        data_collator=PadCollator(0),
        lr_multipliers=cfg.lr_multipliers,
        ewc=ewc,
    )
    trainer.train()
    return trainable(model)


def test_lambda_zero_gives_exactly_the_updates_without_ewc(setup):
    _, _, start, _, _ = setup
    plain = run(setup, None)
    ones = {n: torch.ones_like(p) for n, p in start.items()}
    zero = run(setup, EwcState(ones, start, 0.0))
    assert any(not torch.equal(plain[n], start[n]) for n in plain)  # training moved something
    assert all(torch.equal(plain[n], zero[n]) for n in plain)


def test_large_lambda_keeps_parameters_near_the_anchor(setup):
    _, _, start, _, _ = setup

    def distance(params):
        return sum(((params[n] - start[n]) ** 2).sum().item() for n in start) ** 0.5

    # AdamW bounds each step by about the learning rate: without EWC the LoRA weights drift a step further
    # every step, with a large λ they are pulled back to θ* after the first.
    free = distance(run(setup, None, steps=8))
    ones = {n: torch.ones_like(p) for n, p in start.items()}
    held = distance(run(setup, EwcState(ones, start, 1e4), steps=8))
    assert held < 0.25 * free, (held, free)


def test_fisher_and_penalty(setup):
    cfg, model, start, rows, _ = setup
    collate = PadCollator(0)
    state = estimate_fisher(model, [collate(rows[:2]), collate(rows[2:4])], lam=2.0)
    assert set(state.fisher) == set(start)
    assert all((f >= 0).all() for f in state.fisher.values())
    assert any(f.sum() > 0 for f in state.fisher.values())
    assert state.penalty(model).item() == 0.0  # at θ*
    name = next(n for n in state.fisher if state.fisher[n].sum() > 0)
    with torch.no_grad():
        param = dict(model.named_parameters())[name]
        param.add_(0.5)
        expected = 2.0 * (state.fisher[name] * 0.25).sum().item()
        assert state.penalty(model).item() == pytest.approx(expected, rel=1e-5)
        param.sub_(0.5)


def test_lr_groups_are_built_and_printed(setup, tiny_models):
    cfg, model, _, _, _ = setup
    groups = param_groups(model, 1e-3, {"embeddings": 0.1, "early": 0.5, "late": 1.0, "head": 0.2})
    assert [g["name"] for g in groups] == ["early", "late"]  # LoRA only: no embeddings/head
    assert [g["lr"] for g in groups] == [5e-4, 1e-3]
    early = {id(p) for p in groups[0]["params"]}
    for name, p in model.named_parameters():
        if p.requires_grad and id(p) in early:
            assert ".layers.0." in name
    text = describe_groups(groups)
    assert "early" in text and "lr 0.0005" in text and "tensors" in text
    assert group_of("base_model.model.model.layers.31.mlp.up_proj.lora_A.default.weight", 40) == "late"
    assert group_of("base_model.model.model.layers.19.mlp.up_proj.lora_A.default.weight", 40) == "early"


def test_embeddings_and_head_get_their_own_lr(tiny_models):
    cfg = TrainConfig(
        model=str(tiny_models("mistral")),
        data="unused",
        lora_r=4,
        train_embeddings=True,
        load_in_4bit=False,
        gradient_checkpointing=False,
    )
    model = load_model(cfg, cfg.model)
    groups = param_groups(model, 1e-3, {"embeddings": 0.1, "early": 1.0, "late": 1.0, "head": 0.2})
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"embeddings", "early", "late", "head"}
    assert by_name["embeddings"]["lr"] == pytest.approx(1e-4) and by_name["head"]["lr"] == pytest.approx(2e-4)
    assert sum(p.numel() for p in by_name["embeddings"]["params"]) == 131072 * 64


@pytest.mark.parametrize("arch", ["qwen2", "mistral"])  # qwen2's projections have biases
def test_an_evaluation_pass_does_not_change_the_fisher(tiny_models, arch):
    """An evaluation (eval mode, no gradients) before the Fisher pass, as between the stages of a run,
    leaves the 4-bit layers differentiable: the Fisher equals the one of a model never evaluated."""
    cfg = TrainConfig(model=str(tiny_models(arch)), data="unused", lora_r=4, lora_dropout=0.0, seq_len=32)
    rng = random.Random(1)
    docs = [[rng.randrange(1000, 5000) for _ in range(rng.randrange(5, 40))] for _ in range(12)]
    batches = [PadCollator(0)([row]) for row in list(pack(docs, cfg.seq_len))[:3]]
    fresh = estimate_fisher(load_model(cfg, cfg.model), batches, 1.0)
    evaluated = load_model(cfg, cfg.model)
    evaluated.eval()
    with torch.no_grad():
        evaluated(**batches[0])
    after_eval = estimate_fisher(evaluated, batches, 1.0)
    assert fresh.fisher.keys() == after_eval.fisher.keys()
    for name, value in fresh.fisher.items():
        assert torch.allclose(value, after_eval.fisher[name], rtol=1e-4, atol=1e-10), name
    assert any(v.abs().sum() > 0 for v in fresh.fisher.values())
