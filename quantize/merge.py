"""Merge a LoRA adapter into its base at full or half precision and save an HF checkpoint.

The merge happens on fp32, fp16 or bf16 weights, never on 4-bit ones: merging into NF4 would round the
adapter's small deltas away (and re-quantize the base). The base is loaded at the precision its
`config.json` declares, peft folds the LoRA matrices in (`merge_and_unload`), and the result is saved as
safetensors with the base's tokenizer and chat template, into a temp folder published with `os.replace`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from quantize.adapters import Adapter
from quantize.errors import ExportError

# Tokenizer files that AutoTokenizer.save_pretrained may not write back (Tekken's own file, spm models).
_TOKENIZER_EXTRAS = ("tekken.json", "tokenizer.model", "chat_template.jinja", "generation_config.json")
_DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16", "fp32": "float32"}


def base_dtype(hf_dir: Path) -> str:
    """float32 | float16 | bfloat16: the precision to merge at; ExportError for a quantized base."""
    config = json.loads((hf_dir / "config.json").read_text())
    quant = config.get("quantization_config") or {}
    if quant and quant.get("quant_method") != "gguf":  # "gguf": rebuilt from a GGUF, stored dequantized
        method = (
            quant.get("quant_method") or quant.get("load_in_4bit") and "bitsandbytes 4-bit" or "quantized"
        )
        raise ExportError(
            f"the base {hf_dir} is stored {method}; LoRA is never merged into quantized weights",
            hint="train on (and export from) the full-precision base the trainer caches under hf-base/",
        )
    declared = str(config.get("torch_dtype") or config.get("dtype") or "float32").removeprefix("torch.")
    return _DTYPES.get(declared, "float32")


def merge_adapter(adapter: Adapter, out_dir: Path, *, dtype: str | None = None) -> Path:
    """Write the merged checkpoint to `out_dir` (complete or absent: published with os.replace)."""
    import torch
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    dtype = dtype or base_dtype(adapter.base_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".partial"))
    try:
        config = AutoConfig.from_pretrained(adapter.base_dir)
        if getattr(config, "quantization_config", None):  # a dequantized GGUF's leftover: not a quantizer
            del config.quantization_config
        model = AutoModelForCausalLM.from_pretrained(
            adapter.base_dir, config=config, dtype=getattr(torch, dtype), low_cpu_mem_usage=True
        )
        model = PeftModel.from_pretrained(model, adapter.dir).merge_and_unload()
        model.save_pretrained(tmp, safe_serialization=True)
        del model
        tokenizer_dir = adapter.dir if (adapter.dir / "tokenizer_config.json").is_file() else adapter.base_dir
        AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(tmp)
        for name in _TOKENIZER_EXTRAS:
            for src in (tokenizer_dir / name, adapter.base_dir / name):
                if src.is_file() and not (tmp / name).exists():
                    shutil.copy2(src, tmp / name)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
