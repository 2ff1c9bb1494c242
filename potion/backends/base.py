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
        indent: str = "",
    ) -> Iterator[str]:
        """Stream the continuation of `prompt`. With `indent`, the answer starts with exactly that
        whitespace and then code (`indent_grammar`): token healing for a prompt that left the cursor's
        indentation out. Backends that cannot constrain generation answer unconstrained."""
        ...

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


def indent_grammar(indent: str) -> str:
    """The GBNF grammar (llama.cpp's, also read by llama-server and llama_cpp.server) of an answer that
    starts with exactly `indent` and then a character that is not whitespace, the rest free.

    This is token healing for the indentation the prompt left out (`potion.prompts.completion_prompt`):
    the prompt ends on a line start, a boundary code models know, and the model still writes the line at
    the cursor's depth instead of, say, closing the block with an `end` one level up."""
    if indent.strip(" \t"):
        raise ValueError(f"indent must be spaces and tabs, got {indent!r}")
    literal = indent.replace("\t", "\\t")
    return f'root ::= "{literal}" [^ \\t\\r\\n] [^\\x00]*'
