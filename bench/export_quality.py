"""Export quality: perplexity, size and speed of each exported type of the default model, in one run.

    .venv/bin/python bench/export_quality.py --quick

1. The default model's HF weights: its Q4_K_M GGUF loaded by transformers (`gguf_file=`, dequantized to
   f32) and saved as safetensors. This dequantized checkpoint is the honest base here: there are no
   original f16 weights on this machine, so "f16" below means f16 of the Q4_K_M-derived weights.
2. The real `potion export` path on it: an identity LoRA adapter (peft's default init, B = 0) with its
   `potion_adapter.json`, merged, converted to GGUF f16 by llama.cpp's convert_hf_to_gguf.py, quantized
   to Q8_0, Q6_K, Q5_K_M and Q4_K_M by llama_model_quantize.
3. Perplexity on held-out Elixir (ExUnit's own source from .cache/elixir-src) in non-overlapping
   windows, the same token ids for every type; transformers' perplexity on the same windows (f32);
   file size; generation tokens/s (greedy, 2 threads).

Targets (ratios): q8_ppl_ratio = ppl(q8_0)/ppl(f16) <= 1.01, q4km_ppl_ratio <= 1.06,
gguf_vs_hf_ppl_ratio = ppl(f16 GGUF)/ppl(transformers) <= 1.005. Progress to stderr; last line JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from potion import registry  # noqa: E402

HELD_OUT = ROOT / ".cache" / "elixir-src" / "lib" / "ex_unit" / "lib"
TYPES = ("q8_0", "q6_k", "q5_k_m", "q4_k_m")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def held_out_text(max_chars: int) -> str:
    parts, total = [], 0
    for path in sorted(HELD_OUT.rglob("*.ex")):
        text = path.read_text(encoding="utf-8")
        parts.append(f"# {path.relative_to(HELD_OUT)}\n{text}")
        total += len(text)
        if total >= max_chars:
            break
    if not parts:
        raise SystemExit(f"no Elixir source under {HELD_OUT}: run scripts/fetch-elixir-source.sh")
    return "\n".join(parts)[:max_chars]


def hf_base(out: Path) -> Path:
    """The default model's GGUF, dequantized by transformers, saved as an f32 HF checkpoint (cached)."""
    if (out / "config.json").is_file():
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = registry.resolve()
    log(f"dequantizing {gguf.name} with transformers (gguf_file=)")
    tmp = out.with_name(out.name + ".partial")
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained: a fresh model of its config takes its weights.
    config = loaded.config
    config.__dict__.pop("gguf_file", None)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), assign=True, strict=False)
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(tmp)
    os.replace(tmp, out)
    return out


def identity_adapter(base: Path, out: Path) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from quantize.adapters import weights_sha256

    model = AutoModelForCausalLM.from_pretrained(base)
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])  # B = 0: the identity
    get_peft_model(model, lora).save_pretrained(out)
    sidecar = {
        "id": "bench-identity",
        "run_dir": str(out.parent),
        "base": {
            "spec": registry.DEFAULT_MODEL,
            "hf_dir": str(base),
            "sha256": weights_sha256(base),
            "architecture": "Qwen2ForCausalLM",
        },
        "metrics": {},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (out / "potion_adapter.json").write_text(json.dumps(sidecar))
    return out


def windows(ids: list[int], ctx: int, count: int) -> list[list[int]]:
    return [ids[i * ctx : (i + 1) * ctx] for i in range(min(count, len(ids) // ctx))]


def nll_of(logits, window: list[int]) -> float:
    """Summed negative log-likelihood of window[1:] given the logits at positions [:-1]."""
    import numpy as np

    x = np.asarray(logits[: len(window) - 1], dtype=np.float64)
    x -= x.max(axis=1, keepdims=True)
    logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(window) - 1), window[1:]].sum())


def gguf_ppl(path: Path, wins: list[list[int]], ctx: int, threads: int) -> float:
    import llama_cpp

    llm = llama_cpp.Llama(
        str(path), n_ctx=ctx, n_batch=ctx, logits_all=True, n_threads=threads, verbose=False
    )
    total, n = 0.0, 0
    for window in wins:
        llm.reset()
        llm.eval(window)
        total += nll_of(llm.scores, window)
        n += len(window) - 1
    llm.close()
    return math.exp(total / n)


def hf_ppl(hf_dir: Path, wins: list[list[int]]) -> float:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    total, n = 0.0, 0
    with torch.no_grad():
        for window in wins:
            logits = model(torch.tensor([window])).logits[0].numpy()
            total += nll_of(logits, window)
            n += len(window) - 1
    del model
    return math.exp(total / n)


def tokens_per_second(path: Path, prompt: str, n_tokens: int, threads: int) -> float:
    import llama_cpp

    llm = llama_cpp.Llama(str(path), n_ctx=512, n_threads=threads, verbose=False)
    llm.create_completion(prompt, max_tokens=4, temperature=0)  # warm-up
    llm.reset()
    start = time.perf_counter()
    out = llm.create_completion(prompt, max_tokens=n_tokens, temperature=0)
    elapsed = time.perf_counter() - start
    llm.close()
    return out["usage"]["completion_tokens"] / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 windows of 512 tokens, 32 generated tokens")
    parser.add_argument("--fresh", action="store_true", help="export again even if a finished export exists")
    parser.add_argument("--work", type=Path, default=ROOT / ".cache" / "bench-export", help="work folder")
    args = parser.parse_args()
    ctx, n_windows, gen = (512, 4, 32) if args.quick else (1024, 16, 128)
    threads = min(os.cpu_count() or 2, 2)
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("POTION_CONVERTERS_DIR", str(ROOT / ".cache" / "llama-cpp-converters"))
    from quantize.export import ExportOptions, export_adapter

    started = time.perf_counter()
    base = hf_base(args.work / "hf-base")
    # The export goes to a private POTION_HOME under --work: the bench registers nothing in the user's
    # registry, and a run that was stopped resumes there (potion export finishes what it started).
    os.environ["POTION_HOME"] = str(args.work / "home")
    from potion import exported

    export = None if args.fresh else exported.load("bench")
    export_s = None
    if export is None:
        adapter = args.work / "run" / "adapter"
        if not (adapter / "potion_adapter.json").is_file():
            identity_adapter(base, adapter)
        t0 = time.perf_counter()
        opts = ExportOptions(name="bench", quants=TYPES, outtype="f16", force=args.fresh)
        export = export_adapter(str(adapter), opts)
        export_s = round(time.perf_counter() - t0, 1)
    import llama_cpp

    vocab = llama_cpp.Llama(str(export.file("f16").path), vocab_only=True, verbose=False)
    ids = vocab.tokenize(held_out_text(ctx * n_windows * 6).encode(), add_bos=False, special=False)
    vocab.close()
    wins = windows(ids, ctx, n_windows)
    log(f"perplexity on {len(wins)} windows x {ctx} tokens of {HELD_OUT.relative_to(ROOT)}")
    results = {}
    prompt = "defmodule Counter do\n  use GenServer\n\n  def start_link(opts) do\n"
    for kind in ("f16", *TYPES):
        path = export.file(kind).path
        ppl = gguf_ppl(path, wins, ctx, threads)
        tok_s = tokens_per_second(path, prompt, gen, threads)
        results[kind] = {
            "ppl": round(ppl, 4),
            "size_mb": round(path.stat().st_size / 1e6, 1),
            "tok_s": round(tok_s, 1),
        }
        log(f"{kind:>7}: ppl {ppl:.4f}  {results[kind]['size_mb']:>7.1f} MB  {tok_s:.1f} tok/s")
    hf = hf_ppl(export.folder / "hf", wins)
    log(f"transformers f32: ppl {hf:.4f}")
    out = {
        "bench": "export_quality",
        "quick": args.quick,
        "model": registry.DEFAULT_MODEL,
        "tokens": sum(len(w) - 1 for w in wins),
        "ctx": ctx,
        "types": results,
        "hf_ppl": round(hf, 4),
        "q8_ppl_ratio": round(results["q8_0"]["ppl"] / results["f16"]["ppl"], 4),
        "q4km_ppl_ratio": round(results["q4_k_m"]["ppl"] / results["f16"]["ppl"], 4),
        "gguf_vs_hf_ppl_ratio": round(results["f16"]["ppl"] / hf, 4),
        "export_s": export_s,
        "total_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
