"""Memory planner: what a config needs, from the model's shape alone (nothing is downloaded or loaded).

The shape comes from `model_shape` in the config (Devstral), the config.json of an HF directory, the tiny
model's config, or a GGUF's metadata. Weights are counted as bitsandbytes stores them: 4-bit linear layers
pack two values per byte, with their quantization constants beside them (one absmax per 64 values, itself
quantized to 8 bits per 256-block group with double quantization); embeddings, head, norms and biases stay in
the compute dtype. LoRA weights, their gradients and AdamW's two moments are fp32. Activations are counted
per token: with gradient checkpointing, each layer's input plus one layer recomputed; without, every layer's
intermediate tensors; plus the fp32 logits and their gradient, which dominate small models.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.config import TrainConfig
from trainer.errors import MemoryPlanError

GiB = 2**30
_BLOCK = 64  # bitsandbytes 4-bit block size
_DQ_BLOCK = 256  # double quantization groups absmax values by 256
_DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}


@dataclass(frozen=True)
class Shape:
    """The numbers of a decoder-only transformer that memory depends on."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    tie_word_embeddings: bool = False
    qkv_bias: bool = False

    @classmethod
    def from_config(cls, c: dict[str, Any]) -> Shape:
        heads = c["num_attention_heads"]
        return cls(
            vocab_size=c["vocab_size"],
            hidden_size=c["hidden_size"],
            intermediate_size=c["intermediate_size"],
            num_hidden_layers=c["num_hidden_layers"],
            num_attention_heads=heads,
            num_key_value_heads=c.get("num_key_value_heads") or heads,
            head_dim=c.get("head_dim") or c["hidden_size"] // heads,
            tie_word_embeddings=bool(c.get("tie_word_embeddings", False)),
            qkv_bias=c.get("model_type") == "qwen2" or bool(c.get("attention_bias", False)),
        )

    def linears(self) -> list[tuple[str, int, int]]:
        """(name, in, out) of the linear layers of one decoder layer."""
        h, i, q, kv = (
            self.hidden_size,
            self.intermediate_size,
            self.num_attention_heads,
            self.num_key_value_heads,
        )
        d = self.head_dim
        return [
            ("q_proj", h, q * d),
            ("k_proj", h, kv * d),
            ("v_proj", h, kv * d),
            ("o_proj", q * d, h),
            ("gate_proj", h, i),
            ("up_proj", h, i),
            ("down_proj", i, h),
        ]


@dataclass
class MemoryPlan:
    """Bytes per item; `weights` is what `model.get_memory_footprint()` counts."""

    items: dict[str, int] = field(default_factory=dict)
    excluded: set[str] = field(default_factory=set)  # shown for comparison, not in the total
    notes: list[str] = field(default_factory=list)

    @property
    def weight_bytes(self) -> int:
        return self.items["weights (4-bit linear)"] + self.items["weights (compute dtype)"]

    @property
    def total_bytes(self) -> int:
        return sum(v for k, v in self.items.items() if k not in self.excluded)

    def table(self, memory_gb: float | None = None) -> str:
        lines = [f"{'item':<46} {'MiB':>12}"]
        for name, value in self.items.items():
            mark = "  (not in total)" if name in self.excluded else ""
            lines.append(f"{name:<46} {value / 2**20:>12,.1f}{mark}")
        lines.append(f"{'total':<46} {self.total_bytes / 2**20:>12,.1f}  ({self.total_bytes / GiB:.2f} GiB)")
        if memory_gb is not None:
            verdict = "fits" if self.total_bytes <= memory_gb * GiB else "does NOT fit"
            lines.append(f"{verdict} in {memory_gb:g} GiB")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def shape_of(cfg: TrainConfig) -> Shape:
    """The model's shape from the config, its HF directory, the tiny factory or its GGUF metadata."""
    if cfg.model_shape:
        return Shape.from_config(cfg.model_shape)
    spec = cfg.model
    if spec.startswith("tiny:"):
        from trainer.tiny import tiny_config

        vocab = {"mistral": 131072, "qwen2": 151936, "llama": 151936}.get(spec.removeprefix("tiny:"))
        if vocab is None:
            raise MemoryPlanError(f"no tiny model {spec!r}")
        return Shape.from_config(
            tiny_config(spec.removeprefix("tiny:"), vocab, bos=0, eos=0, pad=0).to_dict()
        )
    path = Path(spec).expanduser()
    if (path / "config.json").is_file():
        return Shape.from_config(json.loads((path / "config.json").read_text()))
    from trainer.model import is_gguf_spec

    if is_gguf_spec(spec):
        return _gguf_shape(spec)
    raise MemoryPlanError(
        f"cannot plan for {spec!r} without downloading it",
        hint="add model_shape (num_hidden_layers, hidden_size, ...) to the config",
    )


def _gguf_shape(spec: str) -> Shape:
    from potion import registry
    from potion.gguf_header import check_gguf, read_metadata

    path = registry.resolve(spec)
    meta = read_metadata(path)
    arch = meta["general.architecture"]

    def key(name: str) -> Any:
        return meta.get(f"{arch}.{name}")

    layers = key("block_count")
    heads = key("attention.head_count")
    # A GGUF without `output.weight` ties the head to the embeddings: one tensor fewer than per-layer
    # tensors x layers + embeddings + final norm + head.
    tensors = check_gguf(path).tensor_count
    return Shape.from_config(
        {
            "model_type": arch,
            "vocab_size": len(meta["tokenizer.ggml.tokens"]),
            "hidden_size": key("embedding_length"),
            "intermediate_size": key("feed_forward_length"),
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": key("attention.head_count_kv") or heads,
            "head_dim": key("attention.key_length") or key("embedding_length") // heads,
            "tie_word_embeddings": (tensors - 2) % layers == 0,
        }
    )


def plan(cfg: TrainConfig, shape: Shape | None = None) -> MemoryPlan:
    """The memory breakdown of training `cfg` on one device."""
    from trainer.translate import compute_dtype

    s = shape or shape_of(cfg)
    dtype_name = {2: "bf16", 4: "fp32"}[compute_dtype(cfg).itemsize]
    dt = _DTYPE_BYTES[dtype_name]
    h, v, n_layers = s.hidden_size, s.vocab_size, s.num_hidden_layers
    linears = s.linears()
    linear_numel = n_layers * sum(a * b for _, a, b in linears)
    other_numel = v * h * (1 if s.tie_word_embeddings else 2) + (2 * n_layers + 1) * h
    if s.qkv_bias:
        other_numel += n_layers * (s.num_attention_heads + 2 * s.num_key_value_heads) * s.head_dim
    rotary = s.head_dim // 2 * 4  # inv_freq buffer, fp32

    p = MemoryPlan()
    if cfg.load_in_4bit:
        p.items["weights (4-bit linear)"] = linear_numel // 2
        p.items["weights (compute dtype)"] = other_numel * dt + rotary
        blocks = linear_numel // _BLOCK
        p.items["quantization constants"] = (
            blocks + blocks // _DQ_BLOCK * 4 + 256 * 4 if cfg.double_quant else blocks * 4
        )
    else:
        p.items["weights (4-bit linear)"] = 0
        p.items["weights (compute dtype)"] = (linear_numel + other_numel) * dt + rotary
        p.items["quantization constants"] = 0
    targets = None if cfg.target_modules == "all-linear" else set(cfg.target_modules)
    lora = n_layers * sum(
        cfg.lora_r * (a + b) for name, a, b in linears if targets is None or name in targets
    )
    full = v * h * (1 if s.tie_word_embeddings else 2) if cfg.train_embeddings else 0
    trainable = lora + full
    p.items["LoRA weights (fp32)"] = lora * 4
    if full:
        p.items["trainable embeddings/head copies (fp32)"] = full * 4
    p.items["gradients (fp32)"] = trainable * 4
    p.items["optimizer state (AdamW, 2 x fp32)"] = trainable * 8
    tokens = cfg.batch_size * cfg.seq_len
    per_layer_full = tokens * (10 * h + 3 * s.intermediate_size) * dt  # q,k,v,o,norms,residuals + MLP
    with_ckpt = n_layers * tokens * h * dt + per_layer_full
    without_ckpt = n_layers * per_layer_full
    logits = tokens * v * 4 * 2  # fp32 logits and their gradient
    on, off = "activations, checkpointing on", "activations, checkpointing off"
    p.items[on] = with_ckpt + logits
    p.items[off] = without_ckpt + logits
    p.excluded.add(off if cfg.gradient_checkpointing else on)
    p.notes.append(
        f"{n_layers} layers, hidden {h}, {s.num_attention_heads}/{s.num_key_value_heads} heads, head_dim "
        f"{s.head_dim}, vocab {v}, intermediate {s.intermediate_size}; compute {dtype_name}; "
        f"batch {cfg.batch_size} x seq {cfg.seq_len}"
    )
    return p


def host_memory_bytes() -> int | None:
    """This machine's physical memory (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def device_memory_bytes(cfg: TrainConfig) -> int | None:
    """The memory to plan against: `memory_gb`, else the GPU's, else None (on CPU: see host_memory_bytes)."""
    if cfg.memory_gb is not None:
        return int(cfg.memory_gb * GiB)
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_properties(0).total_memory
    return None
