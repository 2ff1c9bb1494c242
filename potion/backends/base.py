"""The backend interface every model server speaks to the editor path (lsp, tui)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

# Cancellation is a plain event: the caller sets it, the backend checks it between tokens.
CancelToken = threading.Event


@dataclass(frozen=True)
class ModelInfo:
    """What callers need to know about the loaded model.

    `family` names the FIM template family (see `potion.prompts`), or "unknown" when the model has
    no FIM tokens and only plain completion is possible.
    """

    name: str
    family: str = "unknown"
    n_ctx: int = 4096
    fim_tokens: dict[str, str] = field(default_factory=dict)
    chat_template: str | None = None


@dataclass
class GenerationStats:
    """Counters of the last generation, for telemetry and for tests of prompt-cache reuse."""

    prompt_tokens: int = 0
    evaluated_prompt_tokens: int = 0  # prompt tokens actually run through the model (KV reuse skips some)
    completion_tokens: int = 0
    cancelled: bool = False


@runtime_checkable
class Backend(Protocol):
    """A model that completes text and chats, streaming pieces of text."""

    @property
    def info(self) -> ModelInfo: ...

    last_stats: GenerationStats

    def load(self) -> None:
        """Load the model now (otherwise the first call loads it). Idempotent."""

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int = 128,
        stop: Sequence[str] = (),
        cancel: CancelToken | None = None,
        temperature: float = 0.0,
    ) -> Iterator[str]: ...

    def chat(
        self,
        messages: Sequence[dict[str, str]],
        *,
        max_tokens: int = 512,
        stop: Sequence[str] = (),
        cancel: CancelToken | None = None,
        temperature: float = 0.2,
    ) -> Iterator[str]: ...

    def tokenize(self, text: str) -> list[int]: ...

    def close(self) -> None: ...
