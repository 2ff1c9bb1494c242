"""Configs: every shipped YAML parses and validates; bad keys and values are named; pure translators."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainer.config import LR_GROUPS, TrainConfig, config_from_dict, load_config, parse_overrides
from trainer.errors import ConfigError
from trainer.translate import bnb_config, compute_dtype, fsdp_arguments, lora_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_the_shipped_configs_are_there():
    names = {p.stem for p in CONFIGS}
    assert {"tiny", "qwen-coder-0.5b-cpu", "devstral-small"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_config_parses_and_validates(path):
    cfg = load_config(path)
    assert cfg.name == path.stem
    assert set(cfg.lr_multipliers) == set(LR_GROUPS)
    assert bnb_config(cfg).bnb_4bit_use_double_quant
    assert lora_config(cfg).r == cfg.lora_r


def test_devstral_config_has_the_real_shape():
    cfg = load_config(Path(CONFIGS[0]).parent / "devstral-small.yaml")
    shape = cfg.model_shape
    assert (shape["num_hidden_layers"], shape["hidden_size"], shape["vocab_size"]) == (40, 5120, 131072)
    assert (shape["num_attention_heads"], shape["num_key_value_heads"], shape["head_dim"]) == (32, 8, 128)


def test_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: tiny:mistral\ndata: d\nlora_r: 8\nlr_multipliers: {head: 0.5}\n")
    cfg = load_config(
        path, ["lora_r=4", "lr_multipliers.early=0.25", "memory_gb=12", "target_modules=[q_proj]"]
    )
    assert cfg.lora_r == 4
    assert cfg.lr_multipliers == {"embeddings": 1.0, "early": 0.25, "late": 1.0, "head": 0.5}
    assert cfg.memory_gb == 12.0 and cfg.target_modules == ["q_proj"]
    assert parse_overrides(["a.b=1"]) == {"a": {"b": 1}}


@pytest.mark.parametrize(
    "raw,message",
    [
        ({"lora_rank": 8}, "unknown config key(s) lora_rank"),
        ({"lora_r": "eight"}, "'lora_r' must be int"),
        ({"lora_r": 0}, "'lora_r' has a bad value 0"),
        ({"fim_rate": 1.5}, "'fim_rate' has a bad value 1.5"),
        ({"fim_granularity": "word"}, "'fim_granularity' is 'word'"),
        ({"lr_multipliers": {"middle": 2.0}}, "unknown group(s) middle"),
        ({"gradient_checkpointing": "yes"}, "'gradient_checkpointing' must be bool"),
    ],
)
def test_bad_keys_and_values_are_named(raw, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict({"model": "tiny:mistral", "data": "d", **raw})
    assert message in info.value.user_message()


def test_missing_and_unreadable(tmp_path):
    with pytest.raises(ConfigError, match="missing config key\\(s\\) data"):
        config_from_dict({"model": "m"})
    with pytest.raises(ConfigError, match="no config file"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not key=value"):
        parse_overrides(["lora_r"])


def test_bnb_config_translates_quantization():
    cfg = TrainConfig(model="m", data="d", compute_dtype="bf16")
    q = bnb_config(cfg)
    assert q.load_in_4bit and q.bnb_4bit_quant_type == "nf4" and q.bnb_4bit_use_double_quant
    assert q.bnb_4bit_compute_dtype == torch.bfloat16
    assert q.bnb_4bit_quant_storage == torch.uint8
    # FSDP-QLoRA: packed weights stored in the compute dtype so FSDP can flatten and shard them.
    fsdp = TrainConfig(model="m", data="d", compute_dtype="bf16", fsdp=True)
    assert bnb_config(fsdp).bnb_4bit_quant_storage == torch.bfloat16
    assert fsdp_arguments(fsdp)["fsdp"] == "full_shard auto_wrap" and fsdp_arguments(cfg) == {}
    assert bnb_config(TrainConfig(model="m", data="d", load_in_4bit=False)) is None


def test_compute_dtype_follows_the_device():
    cfg = TrainConfig(model="m", data="d")
    assert compute_dtype(cfg, cuda=False) == torch.float32
    assert compute_dtype(cfg, cuda=True, bf16_ok=True) == torch.bfloat16
    assert compute_dtype(cfg, cuda=True, bf16_ok=False) == torch.float16


def test_lora_config_translates_adapters():
    cfg = TrainConfig(model="m", data="d", lora_r=8, lora_alpha=16, lora_dropout=0.1, use_rslora=True)
    lc = lora_config(cfg)
    assert (lc.r, lc.lora_alpha, lc.lora_dropout, lc.use_rslora) == (8, 16, 0.1, True)
    assert lc.target_modules == "all-linear" and lc.modules_to_save is None
    emb = lora_config(TrainConfig(model="m", data="d", train_embeddings=True, target_modules=["q_proj"]))
    assert set(emb.modules_to_save) == {"embed_tokens", "lm_head"} and emb.target_modules == {"q_proj"}
