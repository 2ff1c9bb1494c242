"""Tiny random models with real tokenizers, for tests and benchmarks (nothing downloaded).

`make_tiny_model("mistral", out)` writes a Hugging Face directory holding a random `MistralForCausalLM` (the
Devstral architecture, hidden size 64) with Devstral's own Tekken tokenizer, converted from the
`mistral-common` wheel by transformers' Tekken converter (so the FIM tokens `[PREFIX]`/`[SUFFIX]`/`[MIDDLE]`
and the chat template are the real ones). "qwen2" and "llama" get the BPE tokenizer of the embedded default
model, read from its GGUF (Qwen2.5-Coder: `<|fim_prefix|>`... and ChatML).

Converting a tokenizer takes 5-15 s, so the converted one is kept under `cache_dir()/tiny-tokenizers/`,
keyed by the source file's name, size and mtime.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ARCHS = ("mistral", "qwen2", "llama")
HIDDEN = 64
LAYERS = 2
HEADS = 4
KV_HEADS = 2
INTERMEDIATE = 128
MAX_POSITIONS = 2048


def tekken_path() -> Path:
    """Devstral's Tekken vocabulary as shipped in the mistral-common wheel."""
    import mistral_common

    return Path(mistral_common.__file__).parent / "data" / "tekken_240911.json"


def _cached_tokenizer_dir(source: Path, build) -> Path:
    """A saved tokenizer directory for `source`, converted once by `build(source)`."""
    from potion import settings

    st = source.stat()
    key = f"{source.name}-{st.st_size}-{int(st.st_mtime)}"
    out = settings.cache_dir() / "tiny-tokenizers" / key
    if (out / "tokenizer_config.json").is_file():
        return out
    tmp = out.with_name(f".{key}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    build(source).save_pretrained(tmp)
    try:
        os.replace(tmp, out)
    except OSError:  # another process published it first
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _tekken_tokenizer(source: Path):
    from transformers.integrations.mistral.tokenizer import convert_tekken_tokenizer

    return convert_tekken_tokenizer(str(source))


def gguf_tokenizer(source: Path):
    """A GGUF's tokenizer through transformers' GGUF tokenizer converter.

    Called on the tokenizer backend directly: `AutoTokenizer` would first parse the whole file for the
    model config (about 40 s for the 0.5B), the backend reads only the tokenizer metadata (about 5 s).
    """
    from transformers.tokenization_utils_tokenizers import TokenizersBackend

    return TokenizersBackend.from_pretrained(source.parent, gguf_file=source.name)


def tokenizer_dir(arch: str) -> Path:
    """The real tokenizer a tiny model of `arch` uses, saved as a Hugging Face tokenizer directory."""
    if arch == "mistral":
        return _cached_tokenizer_dir(tekken_path(), _tekken_tokenizer)
    from potion import registry

    return _cached_tokenizer_dir(registry.resolve(registry.DEFAULT_MODEL), gguf_tokenizer)


def tiny_config(arch: str, vocab_size: int, *, bos: int | None, eos: int | None, pad: int | None):
    """The transformers config of a tiny `arch` model: Devstral's / Qwen2's / Llama's shape, shrunk."""
    from transformers import LlamaConfig, MistralConfig, Qwen2Config

    common = dict(
        vocab_size=vocab_size,
        hidden_size=HIDDEN,
        intermediate_size=INTERMEDIATE,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=pad,
    )
    if arch == "mistral":  # Devstral: untied head, explicit head_dim, no sliding window
        return MistralConfig(
            **common, head_dim=HIDDEN // HEADS, sliding_window=None, tie_word_embeddings=False
        )
    if arch == "qwen2":  # Qwen2.5-Coder-0.5B ties its head to the embeddings
        return Qwen2Config(**common, tie_word_embeddings=True)
    if arch == "llama":
        return LlamaConfig(**common, tie_word_embeddings=False)
    raise ValueError(f"unknown tiny architecture {arch!r}: expected one of {', '.join(ARCHS)}")


def make_tiny_model(arch: str, out_dir: Path, *, seed: int = 0) -> Path:
    """Write a random tiny `arch` model ("mistral", "qwen2" or "llama") with its real tokenizer to `out_dir`.

    Same `seed`, same weights. Returns `out_dir`, loadable with `AutoModelForCausalLM/AutoTokenizer`.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown tiny architecture {arch!r}: expected one of {', '.join(ARCHS)}")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = Path(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir(arch))
    config = tiny_config(
        arch,
        len(tokenizer),
        bos=tokenizer.bos_token_id,
        eos=tokenizer.eos_token_id,
        pad=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
