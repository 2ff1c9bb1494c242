"""Pure translators from a TrainConfig to library objects: bitsandbytes, peft, transformers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig

    from trainer.config import TrainConfig

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def compute_dtype(cfg: TrainConfig, *, cuda: bool | None = None, bf16_ok: bool | None = None) -> torch.dtype:
    """bf16 where the device supports it, else fp32 (CPU training stays exact and deterministic)."""
    if cfg.compute_dtype != "auto":
        return _DTYPES[cfg.compute_dtype]
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if not cuda:
        return torch.float32
    bf16_ok = torch.cuda.is_bf16_supported() if bf16_ok is None else bf16_ok
    return torch.bfloat16 if bf16_ok else torch.float16


def bnb_config(cfg: TrainConfig, dtype: torch.dtype | None = None) -> BitsAndBytesConfig | None:
    """4-bit NF4 with double quantization; for FSDP the packed weights are stored in the compute dtype."""
    if not cfg.load_in_4bit:
        return None
    from transformers import BitsAndBytesConfig

    dtype = dtype or compute_dtype(cfg)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=cfg.quant_type,
        bnb_4bit_use_double_quant=cfg.double_quant,
        bnb_4bit_compute_dtype=dtype,
        bnb_4bit_quant_storage=dtype if cfg.fsdp else torch.uint8,
    )


def lora_config(cfg: TrainConfig) -> LoraConfig:
    """LoRA on all linear layers by default; the embeddings and head trained in full when asked."""
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        use_rslora=cfg.use_rslora,
        target_modules=cfg.target_modules,
        modules_to_save=["embed_tokens", "lm_head"] if cfg.train_embeddings else None,
        bias="none",
        task_type="CAUSAL_LM",
    )


def fsdp_arguments(cfg: TrainConfig) -> dict:
    """TrainingArguments for FSDP-QLoRA (full shard, LoRA-friendly wrapping); {} when not asked."""
    if not cfg.fsdp:
        return {}
    return {
        "fsdp": "full_shard auto_wrap",
        "fsdp_config": {
            "use_orig_params": True,  # frozen 4-bit and trainable LoRA params share a flat param
            "cpu_ram_efficient_loading": True,
            "sync_module_states": True,
        },
    }
