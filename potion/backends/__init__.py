"""Inference backends: llama.cpp (in a supervised worker process, or in-process), OpenAI-compatible HTTP
servers, and a scripted fake."""

from __future__ import annotations

from collections.abc import Sequence

from potion.backends.base import Backend, CancelToken, GenerationStats, ModelInfo
from potion.backends.fake import FakeBackend
from potion.backends.llamacpp import LlamaCppBackend
from potion.backends.openai import OpenAIBackend
from potion.backends.pool import BackendPool, parse_urls
from potion.backends.supervised import SupervisedLlamaCpp
from potion.errors import BackendError


def open_backend(
    model: str | None = None, *, url: str | Sequence[str] | None = None, n_ctx: int = 4096
) -> Backend:
    """The backend for a model spec or a server URL. Lazy: no model is loaded until `load()` or a call.

    With `url`, `model` is the name the server knows the model by (optional for llama-server); several
    URLs (a list, or one string separated by commas) make a `BackendPool` with failover. Otherwise
    `model` is a registry name, an exported model's name, `hf:` spec or local path, resolved (and
    assembled if needed) to a GGUF; `BASE + ADAPTER` also loads a LoRA adapter GGUF on the base. llama.cpp
    runs in a supervised worker process (`SupervisedLlamaCpp`): a crash of the model never takes the
    caller down.
    """
    if url:
        try:
            urls = parse_urls(url)
        except ValueError as exc:
            raise BackendError(str(exc), hint="give server URLs separated by commas") from exc
        if len(urls) > 1:
            return BackendPool(urls, model=model, n_ctx=n_ctx)
        if urls:
            return OpenAIBackend(urls[0], model=model, n_ctx=n_ctx)
    from potion import registry  # the registry imports hub machinery the HTTP path never needs

    resolved = registry.resolve_model(model)
    return SupervisedLlamaCpp(resolved.path, n_ctx=n_ctx, lora_path=resolved.adapter)


__all__ = [
    "Backend",
    "BackendPool",
    "CancelToken",
    "FakeBackend",
    "GenerationStats",
    "LlamaCppBackend",
    "ModelInfo",
    "OpenAIBackend",
    "SupervisedLlamaCpp",
    "open_backend",
]
