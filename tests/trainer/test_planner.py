"""The memory planner: weight bytes within 5% of what transformers reports, Devstral from its config alone."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, Qwen2Config

from potion.cli import main
from trainer import planner
from trainer.config import TrainConfig, load_config
from trainer.errors import MemoryPlanError
from trainer.translate import bnb_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("arch", ["mistral", "qwen2", "llama"])
def test_nf4_weight_bytes_match_the_loaded_tiny_model(tiny_models, arch):
    cfg = TrainConfig(model=str(tiny_models(arch)), data="d")
    model = AutoModelForCausalLM.from_pretrained(
        cfg.model, quantization_config=bnb_config(cfg), dtype=torch.float32
    )
    real = model.get_memory_footprint()
    planned = planner.plan(cfg).weight_bytes
    assert abs(planned - real) / real < 0.05, (planned, real)
    full = TrainConfig(model=cfg.model, data="d", load_in_4bit=False)
    real_full = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=torch.float32).get_memory_footprint()
    assert abs(planner.plan(full).weight_bytes - real_full) / real_full < 0.05


@pytest.mark.e2e
def test_default_models_shape_from_its_gguf_matches_qwen25_coder_05b():
    """The 0.5B's shape read from its GGUF header (nothing loaded); bytes against a meta-device model of
    Qwen2.5-Coder-0.5B's published config."""
    cfg = TrainConfig(model="qwen2.5-coder-0.5b", data="d", load_in_4bit=False, compute_dtype="bf16")
    shape = planner.shape_of(cfg)
    assert (shape.num_hidden_layers, shape.hidden_size, shape.vocab_size) == (24, 896, 151936)
    # This GGUF carries its own output.weight (291 tensors): the HF copy the trainer rebuilds is untied.
    assert not shape.tie_word_embeddings and shape.qkv_bias
    published = Qwen2Config(
        vocab_size=151936,
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        tie_word_embeddings=False,
    )
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(published, dtype=torch.bfloat16)
    real = model.get_memory_footprint()
    assert abs(planner.plan(cfg).weight_bytes - real) / real < 0.05


@pytest.mark.e2e
@pytest.mark.slow
def test_nf4_weight_bytes_match_the_shipped_05b_config_loaded_in_4_bits(tmp_path):
    """The shipped CPU config as it trains (NF4, double quantization, fp32 compute): its plan against the
    footprint of a Qwen2 of the default model's shape (read from its GGUF) loaded the same way. Random
    weights: the footprint depends on the shape, not on the values."""
    cfg = load_config(CONFIGS / "qwen-coder-0.5b-cpu.yaml")
    assert cfg.load_in_4bit and cfg.double_quant
    shape = planner.shape_of(cfg)
    config = Qwen2Config(
        vocab_size=shape.vocab_size,
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        tie_word_embeddings=shape.tie_word_embeddings,
    )
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).save_pretrained(tmp_path)
    model = AutoModelForCausalLM.from_pretrained(
        tmp_path, quantization_config=bnb_config(cfg), dtype=torch.float32
    )
    assert any(type(m).__name__ == "Linear4bit" for m in model.modules())
    real = model.get_memory_footprint()
    planned = planner.plan(cfg).weight_bytes
    assert abs(planned - real) / real < 0.05, (planned, real)


def test_devstral_plan_from_the_config_alone(capsys):
    cfg = load_config(CONFIGS / "devstral-small.yaml")
    plan = planner.plan(cfg)
    params_4bit = plan.items["weights (4-bit linear)"] * 2
    assert 21e9 < params_4bit < 23e9  # Devstral's ~22B linear weights, two per byte
    assert plan.items["activations, checkpointing off"] > 4 * plan.items["activations, checkpointing on"]
    assert 12 * planner.GiB < plan.total_bytes < 24 * planner.GiB  # fits one 24 GB GPU
    assert main(["train", "plan", "--config", str(CONFIGS / "devstral-small.yaml"), "--gpu-gb", "32"]) == 0
    out = capsys.readouterr().out
    assert "fits in 32 GiB" in out and "quantization constants" in out and "optimizer state" in out
    assert main(["train", "plan", "--config", str(CONFIGS / "devstral-small.yaml"), "--gpu-gb", "12"]) == 0
    assert "does NOT fit in 12 GiB" in capsys.readouterr().out


def test_too_big_is_refused_before_anything_loads(tmp_path, capsys):
    from trainer.run import check_memory, train

    cfg = load_config(CONFIGS / "devstral-small.yaml", [f"output_dir={tmp_path}", "memory_gb=8"])
    with pytest.raises(MemoryPlanError, match="more than the 8.0 GiB given"):
        check_memory(cfg)
    with pytest.raises(MemoryPlanError):
        train(cfg)  # the hub id is never contacted: the plan fails first
    assert not (tmp_path / cfg.name).exists()


def test_on_cpu_a_plan_bigger_than_the_ram_warns_before_anything_loads(tiny_models, monkeypatch):
    from trainer.run import check_memory

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = TrainConfig(model=str(tiny_models("mistral")), data="d")
    needs = planner.plan(cfg).total_bytes
    monkeypatch.setattr(planner, "host_memory_bytes", lambda: needs // 2)
    with pytest.warns(UserWarning, match=r"the plan needs .* GiB, more than this machine's .* GiB of RAM"):
        assert check_memory(cfg).total_bytes == needs
    monkeypatch.setattr(planner, "host_memory_bytes", lambda: needs * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_memory(cfg)  # fits: silent
        check_memory(
            load_config(CONFIGS / "devstral-small.yaml", ["model_shape=null", "memory_gb=null"])
        )  # no shape: no check


def test_unknown_shape_is_an_error():
    with pytest.raises(MemoryPlanError, match="without downloading it") as info:
        planner.shape_of(TrainConfig(model="someone/unknown-model", data="d"))
    assert "model_shape" in info.value.user_message()
