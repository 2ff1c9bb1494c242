"""The run configuration: one dataclass, read from `configs/NAME.yaml` with `--set key=value` overrides.

Every key of the YAML is a field of `TrainConfig`; an unknown key or a value of the wrong type or range is a
ConfigError naming the key, raised before anything is loaded.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainer.errors import ConfigError

LR_GROUPS = ("embeddings", "early", "late", "head")


@dataclass
class TrainConfig:
    """Everything a training run depends on. Field comments are the documentation of the YAML keys."""

    # Base model: "tiny:mistral|qwen2|llama" (random, for tests), a registry name or .gguf path, a local
    # Hugging Face directory, or a hub id OWNER/REPO (downloaded through HF_ENDPOINT).
    model: str
    # Corpus directory (corpus.schema layout: stage1/, stage2/, manifest.json).
    data: str
    name: str = "run"
    output_dir: str = "runs"
    # Architecture numbers for the memory planner when the model is not on disk (Devstral): keys of a
    # transformers config (num_hidden_layers, hidden_size, ...).
    model_shape: dict[str, Any] | None = None
    seed: int = 0
    seq_len: int = 512
    # What to do with a stage-2 conversation longer than seq_len: "error" (default) or "drop".
    long_sequences: str = "error"
    max_train_rows: int | None = None
    max_eval_rows: int | None = 64

    # Quantization (bitsandbytes) and precision.
    load_in_4bit: bool = True
    quant_type: str = "nf4"
    double_quant: bool = True
    compute_dtype: str = "auto"  # auto | bf16 | fp16 | fp32
    fsdp: bool = False  # FSDP-QLoRA: 4-bit weights stored in the compute dtype so FSDP can shard them
    attn_implementation: str = "sdpa"
    gradient_checkpointing: bool = True

    # LoRA (peft).
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    use_rslora: bool = False
    target_modules: str | list[str] = "all-linear"
    train_embeddings: bool = False  # also train the embeddings and the head (own LR multipliers)

    # Optimisation (transformers Trainer: AdamW, warmup + cosine).
    batch_size: int = 1
    grad_accum: int = 1
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    # Discriminative learning rates: multipliers of the stage LR per parameter group.
    lr_multipliers: dict[str, float] = field(default_factory=lambda: dict.fromkeys(LR_GROUPS, 1.0))

    # Stage 1: continued pretraining on `text`, packed, with fill-in-the-middle.
    stage1_steps: int = 100
    stage1_lr: float = 2e-4
    fim_rate: float = 0.5  # share of row-sized pieces of each file made FIM samples (context-level FIM)
    fim_spm_rate: float = 0.5
    fim_granularity: str = "line"  # line | token
    # Share of stage-1 rows that are general code (corpus.general: the `train` half of the Python standard
    # library), replayed against forgetting; the forgetting check scores the other half.
    general_replay_fraction: float = 0.0

    # Stage 2: instruction tuning on `messages`, loss on assistant tokens only.
    stage2_steps: int = 50
    stage2_lr: float = 5e-5
    replay_fraction: float = 0.1
    ewc_lambda: float = 0.0
    ewc_batches: int = 8

    # Evaluation, checkpoints, logging.
    eval_steps: int = 50
    save_steps: int = 50
    keep_checkpoints: int = 3
    logging_steps: int = 1
    # Memory of the device to plan for, in GiB (None: the GPU's own; on CPU, more than the RAM only warns).
    memory_gb: float | None = None

    def __post_init__(self) -> None:
        checks = {
            "seq_len": self.seq_len >= 16,
            "lora_r": self.lora_r > 0,
            "lora_alpha": self.lora_alpha > 0,
            "lora_dropout": 0 <= self.lora_dropout < 1,
            "batch_size": self.batch_size > 0,
            "grad_accum": self.grad_accum > 0,
            "warmup_ratio": 0 <= self.warmup_ratio < 1,
            "stage1_steps": self.stage1_steps >= 0,
            "stage2_steps": self.stage2_steps >= 0,
            "stage1_lr": self.stage1_lr > 0,
            "stage2_lr": self.stage2_lr > 0,
            "fim_rate": 0 <= self.fim_rate <= 1,
            "fim_spm_rate": 0 <= self.fim_spm_rate <= 1,
            "replay_fraction": 0 <= self.replay_fraction < 1,
            "general_replay_fraction": 0 <= self.general_replay_fraction < 1,
            "ewc_lambda": self.ewc_lambda >= 0,
            "ewc_batches": self.ewc_batches > 0,
            "eval_steps": self.eval_steps > 0,
            "save_steps": self.save_steps > 0,
            "keep_checkpoints": self.keep_checkpoints > 0,
            "logging_steps": self.logging_steps > 0,
            "memory_gb": self.memory_gb is None or self.memory_gb > 0,
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"config key {key!r} has a bad value {getattr(self, key)!r}")
        choices = {
            "quant_type": ("nf4", "fp4"),
            "compute_dtype": ("auto", "bf16", "fp16", "fp32"),
            "fim_granularity": ("line", "token"),
            "long_sequences": ("error", "drop"),
            "attn_implementation": ("sdpa", "eager", "flash_attention_2"),
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(
                    f"config key {key!r} is {getattr(self, key)!r}", hint=f"use one of {', '.join(allowed)}"
                )
        unknown = set(self.lr_multipliers) - set(LR_GROUPS)
        if unknown:
            raise ConfigError(
                f"config key 'lr_multipliers' has unknown group(s) {', '.join(sorted(unknown))}",
                hint=f"groups are {', '.join(LR_GROUPS)}",
            )
        self.lr_multipliers = {**dict.fromkeys(LR_GROUPS, 1.0), **self.lr_multipliers}
        if self.model_shape is not None and not isinstance(self.model_shape, dict):
            raise ConfigError("config key 'model_shape' must be a mapping of transformers config keys")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """`value` checked against the annotation `tp` (ints widen to floats); ConfigError names `key`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(tp):
            try:
                return _coerce(key, value, option)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[-1]
    if tp is type(None):
        if value is None:
            return None
    elif tp is Any:
        return value
    elif tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    elif tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif tp in (str, bool) and isinstance(value, tp):
        return value
    elif origin is list and isinstance(value, list):
        (item,) = typing.get_args(tp)
        return [_coerce(key, v, item) for v in value]
    elif origin is dict and isinstance(value, dict):
        _, item = typing.get_args(tp)
        return {str(k): _coerce(f"{key}.{k}", v, item) for k, v in value.items()}
    name = getattr(tp, "__name__", str(tp))
    raise ConfigError(f"config key {key!r} must be {name}, got {value!r}")


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["lora_r=8", "lr_multipliers.head=0.1"]` -> {"lora_r": 8, "lr_multipliers": {"head": 0.1}}."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r} is not key=value", hint="e.g. --set lora_r=8")
        value = yaml.safe_load(raw) if raw.strip() else None
        *parents, leaf = key.strip().split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def config_from_dict(raw: dict[str, Any], *, where: str = "config") -> TrainConfig:
    """A TrainConfig from a mapping: unknown keys, missing keys and wrong types are named."""
    hints = typing.get_type_hints(TrainConfig)
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown config key(s) {', '.join(unknown)}",
            hint="check the spelling against trainer/config.py (TrainConfig)",
        )
    missing = [
        n
        for n, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and n not in raw
    ]
    if missing:
        raise ConfigError(f"{where}: missing config key(s) {', '.join(missing)}")
    values = {key: _coerce(key, value, hints[key]) for key, value in raw.items()}
    return TrainConfig(**values)


def load_config(path: Path | str, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a YAML config and apply `--set key=value` overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no config file {path}", hint="pass one of configs/*.yaml")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a mapping of config keys")
    raw = _merge(raw, parse_overrides(list(overrides)))
    return config_from_dict(raw, where=str(path))


def save_config(cfg: TrainConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
