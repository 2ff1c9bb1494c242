"""Completion latency: plain llama-cpp-python vs Potion's llama.cpp backend, in one run on the same model.

    .venv/bin/python bench/backend_latency.py --quick

1. Overhead, cold vs cold: the same FIM prompts (Elixir stdlib source around a cursor) through
   `Llama.create_completion` with its cache reset before each call, and through the backend editors get
   (`open_backend`: llama.cpp in a supervised worker process, pieces streamed over a pipe) with
   `reset_cache()` before each call. Runs alternate between the two so CPU contention hits both alike.
   Target: overhead_ratio <= 1.05, the median over prompts of potion_ms / raw_ms for the same prompt
   (runs back to back); potion_ms_p50 / raw_ms_p50 is reported too.
2. Prefix reuse: a ~1,500-token prompt, then the same prompt with a one-line edit a few lines above the
   cursor, as when the user types. Cold (cache reset) vs warm (previous prompt cached) through the
   backend. Target: prefix_reuse_speedup = cold_ms_p50 / warm_ms_p50 >= 3.

Progress goes to stderr; the last line of stdout is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from potion import registry  # noqa: E402
from potion.backends import open_backend  # noqa: E402
from potion.prompts import completion_prompt  # noqa: E402

ELIXIR_LIB = ROOT / ".cache" / "elixir-src" / "lib" / "elixir" / "lib"
FALLBACK_SOURCE = ROOT / "examples" / "counter.ex"
MAX_TOKENS = 16


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def source_texts() -> list[tuple[str, str]]:
    names = ["gen_server.ex", "agent.ex", "enum.ex", "supervisor.ex", "task.ex", "registry.ex"]
    found = [(n, (ELIXIR_LIB / n).read_text()) for n in names if (ELIXIR_LIB / n).is_file()]
    if not found:  # without scripts/fetch-elixir-source.sh: repeat the demo file into a larger one
        text = FALLBACK_SOURCE.read_text()
        found = [
            (f"demo_{i}.ex", text.replace("Demo.Counter", f"Demo.Counter{j}") * 40)
            for i, j in enumerate(range(6))
        ]
    return found


def cursor_split(text: str, fraction: float) -> tuple[str, str]:
    """Cut at the end of a line's indentation about `fraction` into the file, as if the user stood there."""
    lines = text.split("\n")
    i = max(1, int(len(lines) * fraction))
    while i < len(lines) - 1 and not lines[i].strip():
        i += 1
    indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    prefix = "\n".join(lines[:i]) + "\n" + indent
    return prefix, lines[i][len(indent) :] + "\n" + "\n".join(lines[i + 1 :])


def timed(fn) -> tuple[float, str]:
    start = time.perf_counter()
    out = fn()
    return (time.perf_counter() - start) * 1000, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a few minutes on 2 cores)")
    parser.add_argument("--model", default=None, help="registry name or GGUF path (default model)")
    args = parser.parse_args()
    # Many short pairs rather than a few long ones: the machine is shared and the median needs samples.
    runs_cold, runs_warm, short_budget = (8, 3, 256) if args.quick else (16, 7, 512)

    import llama_cpp

    model_path = registry.resolve(args.model)
    backend = open_backend(str(model_path), n_ctx=4096)
    backend.load()
    raw = llama_cpp.Llama(
        str(model_path),
        n_ctx=4096,
        n_threads=backend.n_threads,
        n_threads_batch=backend.n_threads,
        verbose=False,
    )
    info = backend.info
    log(f"model {info.name} ({info.family}), {backend.n_threads} threads")

    texts = source_texts()
    prompts = []
    for i in range(runs_cold):
        name, text = texts[i % len(texts)]
        prefix, suffix = cursor_split(text, 0.2 + 0.07 * i)
        prompts.append(
            completion_prompt(
                prefix,
                suffix,
                info=info,
                tokenize=backend.tokenize,
                budget_tokens=short_budget,
                path=f"lib/{name}",
            )
        )

    # No stop strings in the overhead runs: the library renders control tokens as "" and would not stop
    # where Potion does, and equal work on both sides is the point. Both still stop at end-of-generation.
    counts: dict[str, int] = {}

    def run_raw(p, stop: list[str] | None = None) -> str:
        raw.reset()  # fresh each time: the whole prompt is evaluated
        out = raw.create_completion(p.text, max_tokens=MAX_TOKENS, stop=stop or [], temperature=0.0)
        counts["raw"] = out["usage"]["completion_tokens"]
        return out["choices"][0]["text"]

    def run_potion(p, stop: list[str] | None = None) -> str:
        text = "".join(backend.complete(p.text, max_tokens=MAX_TOKENS, stop=stop or [], temperature=0.0))
        counts["potion"] = backend.last_stats.completion_tokens
        return text

    # Warm both once so page cache and thread pools are not part of the first measurement.
    run_raw(prompts[0])
    backend.reset_cache()
    run_potion(prompts[0])

    def run_potion_cold(p) -> str:
        backend.reset_cache()
        return run_potion(p)

    raw_ms, potion_ms, same_output, same_work = [], [], 0, 0
    for i, p in enumerate(prompts):
        # Alternate which goes first, so a burst of load from elsewhere does not favour one side.
        first, second = (run_raw, run_potion_cold) if i % 2 == 0 else (run_potion_cold, run_raw)
        ms_a, out_a = timed(lambda p=p, f=first: f(p))
        ms_b, out_b = timed(lambda p=p, f=second: f(p))
        (ms_raw, ms_pot) = (ms_a, ms_b) if first is run_raw else (ms_b, ms_a)
        assert backend.last_stats.evaluated_prompt_tokens == backend.last_stats.prompt_tokens
        same_output += out_a == out_b
        same_work += counts["raw"] == counts["potion"]
        raw_ms.append(ms_raw)
        potion_ms.append(ms_pot)
        n = backend.last_stats.prompt_tokens
        log(f"cold {i}: {n} prompt tokens  raw {ms_raw:7.0f} ms  potion {ms_pot:7.0f} ms")

    # Prefix reuse on a long prompt: edits a few lines above the cursor, one per keystroke-like request.
    name, text = max(texts, key=lambda t: len(t[1]))
    prefix, suffix = cursor_split(text, 0.5)
    base_lines = prefix.split("\n")

    def edited(k: int) -> str:
        lines = list(base_lines)
        lines[-4] = lines[-4] + f"  # edit {k}"
        return "\n".join(lines)

    def long_prompt(prefix_text: str):
        return completion_prompt(
            prefix_text, suffix, info=info, tokenize=backend.tokenize, budget_tokens=1664, path=f"lib/{name}"
        )

    cold_ms, warm_ms, evaluated = [], [], []
    n_long = 0
    for k in range(max(runs_warm, 2)):
        if k < min(runs_cold, 2 if args.quick else runs_cold):
            backend.reset_cache()
            p = long_prompt(edited(100 + k))
            ms, _ = timed(lambda p=p: run_potion(p, p.stop))
            cold_ms.append(ms)
            n_long = backend.last_stats.prompt_tokens
            log(f"long cold {k}: {n_long} prompt tokens  {ms:7.0f} ms")
        neighbour = long_prompt(edited(200 + k))
        run_potion(neighbour, neighbour.stop)  # the cache now holds the prompt before the keystroke
        p = long_prompt(edited(300 + k))
        ms, _ = timed(lambda p=p: run_potion(p, p.stop))
        warm_ms.append(ms)
        evaluated.append(backend.last_stats.evaluated_prompt_tokens)
        log(f"long warm {k}: evaluated {evaluated[-1]} of {backend.last_stats.prompt_tokens}  {ms:7.0f} ms")

    raw_p50, potion_p50 = statistics.median(raw_ms), statistics.median(potion_ms)
    cold_p50, warm_p50 = statistics.median(cold_ms), statistics.median(warm_ms)
    result = {
        "model": info.name,
        "threads": backend.n_threads,
        "max_tokens": MAX_TOKENS,
        "raw_ms_p50": round(raw_p50, 1),
        "potion_ms_p50": round(potion_p50, 1),
        # The median of per-pair ratios: each pair runs back to back, so load from other processes on a
        # shared machine mostly cancels out, where a ratio of medians would carry it.
        "overhead_ratio": round(statistics.median(p / r for p, r in zip(potion_ms, raw_ms, strict=True)), 3),
        "overhead_ratio_of_medians": round(potion_p50 / raw_p50, 3),
        "overhead_target": 1.05,
        "same_output": f"{same_output}/{len(prompts)}",
        "same_completion_tokens": f"{same_work}/{len(prompts)}",
        "long_prompt_tokens": n_long,
        "cold_ms_p50": round(cold_p50, 1),
        "warm_ms_p50": round(warm_p50, 1),
        "warm_evaluated_tokens_p50": statistics.median(evaluated),
        "prefix_reuse_speedup": round(cold_p50 / warm_p50, 2),
        "prefix_reuse_target": 3.0,
    }
    backend.close()
    raw.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
