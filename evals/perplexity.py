"""Perplexity of a model on a folder of Elixir files, through llama.cpp (`LlamaCppBackend.token_logprobs`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

from evals.errors import EvalError
from potion.backends import Backend
from potion.prompts import keep_head


def elixir_files(folder: Path, limit: int | None = None) -> list[Path]:
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix in (".ex", ".exs") and p.is_file())
    return files[:limit] if limit else files


def perplexity(
    backend: Backend,
    folder: Path,
    *,
    window_tokens: int = 512,
    max_files: int | None = None,
    advance: Callable[[int], None] = lambda _n: None,
) -> dict:
    """Perplexity over the Elixir files of `folder` (see `perplexity_of`)."""
    files = elixir_files(folder, max_files)
    if not files:
        raise EvalError(f"no .ex or .exs files under {folder}", hint="give a folder of Elixir sources")
    documents = [(str(p.relative_to(folder)), p.read_text(encoding="utf-8", errors="replace")) for p in files]
    return perplexity_of(backend, documents, window_tokens=window_tokens, advance=advance, where=str(folder))


def perplexity_of(
    backend: Backend,
    documents: Sequence[tuple[str, str]],
    *,
    window_tokens: int = 512,
    advance: Callable[[int], None] = lambda _n: None,
    where: str = "the documents",
) -> dict:
    """exp(mean negative log-likelihood) over the first `window_tokens` tokens of each (name, text)
    document (cut at a line end), plus the per-document values."""
    score = getattr(backend, "token_logprobs", None)
    if score is None:
        raise EvalError(
            "perplexity needs token log-probabilities, which only the in-process llama.cpp backend gives",
            hint="pass a registry name or .gguf path instead of a server URL",
        )
    total, count, per_file = 0.0, 0, {}
    for name, text in documents:
        window = keep_head(text, window_tokens, backend.tokenize)
        logprobs = score(window) if window.strip() else []
        if logprobs:
            per_file[name] = math.exp(-sum(logprobs) / len(logprobs))
            total += sum(logprobs)
            count += len(logprobs)
        advance(1)
    if not count:
        raise EvalError(f"{where} have no text to score", hint="give a folder of source files")
    return {"perplexity": math.exp(-total / count), "tokens": count, "files": per_file}
