"""Base models: where they come from, their hash, and loading them in 4 bits with LoRA.

A model spec is one of
- `tiny:mistral|qwen2|llama`: a random tiny model with a real tokenizer (trainer.tiny), for tests;
- a local Hugging Face directory (config.json + safetensors);
- a GGUF: a registry name (`qwen2.5-coder-0.5b`), `hf:OWNER/REPO/FILE.gguf` or a `.gguf` path. transformers
  loads a GGUF dequantized but will not save it nor load it in 4 bits, so the model is rebuilt from its
  config and state dict and saved once as an HF directory under `cache_dir()/hf-base/<gguf sha256>/`
  (with a `potion_base.json` sidecar holding the hashes); that copy is what gets quantized;
- a hub id `OWNER/REPO[@REVISION]`, downloaded with huggingface_hub from HF_ENDPOINT.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from potion.registry import sha256_file
from trainer.errors import ModelSourceError

BASE_SIDECAR = "potion_base.json"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")
_HUB_FILES = ["*.json", "*.safetensors", "tokenizer*", "*.jinja", "*.model", "*.txt"]


@dataclass(frozen=True)
class BaseModel:
    """The full-precision HF checkpoint a run trains on: the adapter sidecar's `base`."""

    spec: str
    hf_dir: str
    sha256: str
    architecture: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def hash_weights(hf_dir: Path) -> str:
    """The weights hash, always computed: for each weight file in name order, its name, NUL, its sha256."""
    hf_dir = Path(hf_dir)
    files = sorted(hf_dir.glob("*.safetensors")) or sorted(hf_dir.glob("*.bin"))
    if not files:
        raise ModelSourceError(
            f"{hf_dir} has no weights (*.safetensors)", hint="point at a full HF checkpoint"
        )
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0" + sha256_file(f).encode())
    return digest.hexdigest()


def weights_sha256(hf_dir: Path) -> str:
    """One hash over the weight files of an HF directory (names and contents, in name order); a rebuilt
    base's sidecar already holds it."""
    sidecar = hf_dir / BASE_SIDECAR
    if sidecar.is_file():
        return json.loads(sidecar.read_text())["weights_sha256"]
    return hash_weights(hf_dir)


def architecture_of(hf_dir: Path) -> str:
    config = json.loads((hf_dir / "config.json").read_text())
    return (config.get("architectures") or [config.get("model_type", "unknown")])[0]


def _publish(tmp: Path, final: Path) -> Path:
    """Move a fully written directory into place; another process may have won the race."""
    try:
        os.replace(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def tiny_dir(arch: str, seed: int = 0) -> Path:
    from potion import settings
    from trainer.tiny import ARCHS, make_tiny_model

    if arch not in ARCHS:
        raise ModelSourceError(f"no tiny model {arch!r}", hint=f"use tiny:{'|'.join(ARCHS)}")
    final = settings.cache_dir() / "tiny-models" / f"{arch}-seed{seed}"
    if (final / "config.json").is_file():
        return final
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    make_tiny_model(arch, tmp, seed=seed)
    return _publish(tmp, final)


def hf_dir_from_gguf(gguf: Path, *, progress: bool = True) -> Path:
    """The HF copy of a GGUF model, rebuilt and cached once (keyed by the GGUF's sha256)."""
    import torch
    from transformers import AutoModelForCausalLM, GgufConfig

    from potion import settings
    from trainer.tiny import gguf_tokenizer

    source_sha = sha256_file(gguf)
    final = settings.cache_dir() / "hf-base" / source_sha
    if (final / BASE_SIDECAR).is_file():
        return final
    if progress:
        print(f"rebuilding {gguf.name} as a Hugging Face checkpoint (once; cached in {final})")
    try:
        loaded = AutoModelForCausalLM.from_pretrained(
            gguf.parent,
            gguf_file=gguf.name,
            dtype=torch.bfloat16,
            quantization_config=GgufConfig(dequantize=True),  # dense weights, not packed GGUF blocks
        )
        tokenizer = gguf_tokenizer(gguf)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelSourceError(
            f"transformers cannot load {gguf}: {str(exc).splitlines()[0]}",
            hint="use a GGUF of a supported architecture, or an HF directory",
        ) from exc
    # A GGUF-loaded model refuses save_pretrained: a fresh model of the same config takes its weights.
    config = loaded.config
    for key in ("gguf_file", "quantization_config"):
        config.__dict__.pop(key, None)
    with torch.device("meta"):
        fresh = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    fresh.load_state_dict(loaded.state_dict(), assign=True, strict=False)
    if getattr(config, "tie_word_embeddings", False):
        fresh.tie_weights()
    del loaded
    tmp = final.with_name(f".{source_sha}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    fresh.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    sidecar = {"source": str(gguf), "source_sha256": source_sha, "weights_sha256": weights_sha256(tmp)}
    (tmp / BASE_SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n")
    return _publish(tmp, final)


def hub_dir(spec: str) -> Path:
    """A hub model's snapshot (config, tokenizer, safetensors) through huggingface_hub."""
    import huggingface_hub
    from huggingface_hub import errors as hf_errors

    from potion import hub

    repo, _, revision = spec.partition("@")
    try:
        path = huggingface_hub.snapshot_download(
            repo,
            revision=revision or None,
            allow_patterns=_HUB_FILES,
            cache_dir=hub.hub_cache_dir(),
            endpoint=hub.endpoint(),
        )
    except hf_errors.RepositoryNotFoundError as exc:
        raise ModelSourceError(
            f"no hub repository {repo} at {hub.endpoint()}", hint="check the OWNER/REPO spelling"
        ) from exc
    except (hf_errors.HfHubHTTPError, hf_errors.LocalEntryNotFoundError, OSError) as exc:
        raise ModelSourceError(
            f"cannot download {spec} from {hub.endpoint()}: {str(exc).splitlines()[0]}",
            hint="check the connection or HF_ENDPOINT, or pass a local HF directory",
        ) from exc
    return Path(path)


def is_gguf_spec(spec: str) -> bool:
    from potion import registry

    return spec.endswith(".gguf") or spec in registry.MODELS


def resolve_base(spec: str, *, progress: bool = True) -> BaseModel:
    """Turn a model spec into the HF directory to train on, with its weights' hash."""
    if spec.startswith("tiny:"):
        hf = tiny_dir(spec.removeprefix("tiny:"))
    elif Path(spec).expanduser().is_dir():
        hf = Path(spec).expanduser().resolve()
        if not (hf / "config.json").is_file():
            raise ModelSourceError(f"{hf} is not a Hugging Face model directory (no config.json)")
    elif is_gguf_spec(spec):
        from potion import registry
        from potion.errors import PotionError

        try:
            gguf = registry.resolve(spec, progress=progress)
        except PotionError as exc:
            raise ModelSourceError(exc.message, hint=exc.hint) from exc
        hf = hf_dir_from_gguf(gguf, progress=progress)
    elif _HUB_ID.match(spec):
        hf = hub_dir(spec)
    else:
        raise ModelSourceError(
            f"cannot tell what model {spec!r} is",
            hint="use tiny:ARCH, an HF directory, a .gguf path or registry name, or a hub id OWNER/REPO",
        )
    return BaseModel(spec=spec, hf_dir=str(hf), sha256=weights_sha256(hf), architecture=architecture_of(hf))


def load_tokenizer(hf_dir: str | Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def keep_4bit_weights_trainable(model: Any) -> None:
    """Turn off bitsandbytes' CPU inference repacking. On CPUs with AVX512-BF16, a `Linear4bit` called in
    eval mode without gradients (the Trainer's evaluation) rewrites its weights into a packed layout for
    good, and every later call, training included, takes an inference kernel that autograd cannot go
    through: the EWC Fisher pass then fails ("a view of a leaf Variable ... in-place") and training after
    an evaluation would get no gradients through the frozen layers."""
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


def load_model(cfg: Any, hf_dir: str | Path) -> Any:
    """The base in 4-bit NF4 (or full precision), prepared for k-bit training, with fresh LoRA adapters."""
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, set_seed

    from trainer.translate import bnb_config, compute_dtype, lora_config

    dtype = compute_dtype(cfg)
    quant = bnb_config(cfg, dtype)
    model = AutoModelForCausalLM.from_pretrained(
        hf_dir, quantization_config=quant, dtype=dtype, attn_implementation=cfg.attn_implementation
    )
    model.config.use_cache = False
    if quant is not None:
        keep_4bit_weights_trainable(model)
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=cfg.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    elif cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    set_seed(cfg.seed)  # LoRA's A matrices are random: the same seed, the same start (exact resume)
    return get_peft_model(model, lora_config(cfg))
