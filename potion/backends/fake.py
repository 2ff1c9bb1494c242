"""A scripted backend for tests: deterministic output, records every prompt, honours cancellation."""

from __future__ import annotations

import re
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence

from potion.backends.base import CancelToken, GenerationStats, ModelInfo
from potion.errors import BackendError

_PIECES = re.compile(r"\s+|\w+|[^\w\s]")

Script = str | Callable[[str], str]


def fake_pieces(text: str) -> list[str]:
    """Split text the way FakeBackend streams it: words, runs of space, single punctuation."""
    return _PIECES.findall(text)


class FakeBackend:
    """Streams scripted answers piece by piece.

    `responses` is a list used in turn (the last one repeats), or a function of the prompt.
    `token_delay` sleeps between pieces so tests can cancel mid-stream; `fail_after` raises a
    BackendError after that many pieces, like a server that drops the connection.
    """

    def __init__(
        self,
        responses: Sequence[Script] | Script = "",
        *,
        info: ModelInfo | None = None,
        token_delay: float = 0.0,
        fail_after: int | None = None,
        load_error: Exception | None = None,
    ) -> None:
        self._responses: list[Script] = (
            [responses] if isinstance(responses, str) or callable(responses) else list(responses)
        )
        self._info = info or ModelInfo(
            name="fake",
            family="qwen2.5-coder",
            n_ctx=4096,
            fim_tokens={
                "prefix": "<|fim_prefix|>",
                "suffix": "<|fim_suffix|>",
                "middle": "<|fim_middle|>",
            },
        )
        self.token_delay = token_delay
        self.fail_after = fail_after
        self.load_error = load_error
        self.prompts: list[str] = []
        self.indents: list[str] = []  # `indent` of each complete() call (the fake does not constrain)
        self.chats: list[list[dict[str, str]]] = []
        self.loaded = False
        self.last_stats = GenerationStats()
        self._lock = threading.Lock()

    @property
    def info(self) -> ModelInfo:
        return self._info

    def load(self) -> None:
        if self.load_error is not None:
            raise self.load_error
        self.loaded = True

    def _answer(self, prompt: str) -> str:
        with self._lock:
            index = min(len(self.prompts) + len(self.chats) - 1, len(self._responses) - 1)
            script = self._responses[max(index, 0)] if self._responses else ""
        return script(prompt) if callable(script) else script

    def _stream(
        self, text: str, prompt: str, max_tokens: int, stop: Sequence[str], cancel: CancelToken | None
    ) -> Iterator[str]:
        self.load()
        n_prompt = len(self.tokenize(prompt))
        self.last_stats = GenerationStats(prompt_tokens=n_prompt, evaluated_prompt_tokens=n_prompt)
        out = ""
        for count, piece in enumerate(fake_pieces(text)[:max_tokens]):
            if cancel is not None and cancel.is_set():
                self.last_stats.cancelled = True
                return
            if self.fail_after is not None and count >= self.fail_after:
                raise BackendError("fake backend dropped the connection mid-stream")
            if self.token_delay:
                time.sleep(self.token_delay)
            candidate = out + piece
            cut = min((candidate.find(s) for s in stop if s and s in candidate), default=-1)
            if cut >= 0:
                if cut > len(out):
                    yield candidate[len(out) : cut]
                return
            out = candidate
            self.last_stats.completion_tokens += 1
            yield piece

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
        with self._lock:
            self.prompts.append(prompt)
            self.indents.append(indent)
        return self._stream(self._answer(prompt), prompt, max_tokens, stop, cancel)

    def chat(
        self,
        messages: Sequence[dict[str, str]],
        *,
        max_tokens: int = 512,
        stop: Sequence[str] = (),
        cancel: CancelToken | None = None,
        temperature: float = 0.2,
    ) -> Iterator[str]:
        with self._lock:
            self.chats.append([dict(m) for m in messages])
        prompt = "\n".join(m.get("content", "") for m in messages)
        return self._stream(self._answer(prompt), prompt, max_tokens, stop, cancel)

    def tokenize(self, text: str) -> list[int]:
        return [zlib.crc32(p.encode()) & 0xFFFF for p in fake_pieces(text)]

    def close(self) -> None:
        self.loaded = False
