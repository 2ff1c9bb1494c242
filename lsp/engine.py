"""The completion engine: debounce, cancellation, one generation at a time, time budget, cache.

It is plain asyncio + one worker thread, tested without a transport. The language server awaits
`CompletionEngine.suggest` on its event loop; the model runs on the engine's single worker thread, so the
loop keeps reading messages (a newer keystroke, `$/cancelRequest`) while a suggestion is generated.

- Debounce: a request waits `debounce_ms`; if a newer one arrived meanwhile it answers None at once.
- Cancellation: a newer request, or the awaiting task being cancelled (pygls cancels it on
  `$/cancelRequest`), sets the running generation's CancelToken; the backend stops between tokens.
- One generation at a time: the worker pool has one thread; a generation superseded while queued never runs.
- Time budget: generation stops `time_budget_ms` after its first token; complete lines are kept.
- Cache: by prompt text (same cursor state again), and type-through: a user typing the characters of a
  shown suggestion gets the rest of it without a generation, before any debounce.
- Canary: with `set_canary(backend, share)`, that share of suggestions, chosen by a hash of the suggestion
  id made before generating (`potion.backends.canary.routes_to_canary`), goes to the candidate backend.
  Every suggestion carries the `model` that answered and its `arm`; a cached answer keeps its author's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from potion import completion
from potion.backends import Backend, CancelToken
from potion.backends.canary import CANARY, STABLE, routes_to_canary
from potion.completion import DEFAULT_SETTINGS, CompletionSettings, CompletionStream, CursorContext
from potion.errors import PotionError
from potion.prompts import CompletionPrompt

T = TypeVar("T")

log = logging.getLogger(__name__)

_TAIL = 256  # characters of prefix/suffix that identify a cursor state in the type-through cache


@dataclass(frozen=True)
class EngineConfig:
    debounce_ms: int = 150
    max_tokens: int = DEFAULT_SETTINGS.max_tokens
    time_budget_ms: int = 5000
    prompt_tokens: int = DEFAULT_SETTINGS.prompt_tokens  # token budget of the FIM prompt (with extra files)
    extra_context_chars: int = DEFAULT_SETTINGS.extra_context_chars  # other files' chunks, at most
    cache_size: int = 256

    def settings(self) -> CompletionSettings:
        """The shared pipeline's settings (potion.completion) with this server's budgets."""
        return dataclasses.replace(
            DEFAULT_SETTINGS,
            max_tokens=self.max_tokens,
            prompt_tokens=self.prompt_tokens,
            extra_context_chars=self.extra_context_chars,
        )


@dataclass(frozen=True)
class CompletionRequest:
    uri: str
    prefix: str  # document text before the cursor
    suffix: str  # document text after the cursor
    path: str | None = None
    extra_files: Sequence[tuple[str, str]] = ()


def new_suggestion_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass
class Suggestion:
    text: str
    id: str = field(default_factory=new_suggestion_id)
    cache_hit: bool = False
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    timed_out: bool = False
    model: str = ""  # the model that answered (for a cache hit: the one that generated the text)
    arm: str = STABLE  # "stable" or "canary"


@dataclass
class EngineStats:
    requests: int = 0
    cache_hits: int = 0
    generations: int = 0  # generations that started on the worker
    superseded: int = 0  # requests answered None because a newer one came during the debounce
    cancelled: int = 0  # generations stopped by a newer request or $/cancelRequest
    errors: int = 0
    errors_by_model: dict[str, int] = field(default_factory=dict)  # failed generations per model


@dataclass
class _Shown:
    """A suggestion as shown at a cursor state, for the type-through cache."""

    uri: str
    prefix_len: int
    prefix_tail: str
    suffix_head: str
    text: str
    model: str = ""
    arm: str = STABLE


class TypeThroughCache:
    """Suggestions by cursor state; also answers for a cursor that typed into a shown suggestion."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, int, str, str], _Shown] = OrderedDict()
        self._lock = threading.Lock()

    def store(self, request: CompletionRequest, text: str, model: str = "", arm: str = STABLE) -> None:
        entry = _Shown(
            request.uri,
            len(request.prefix),
            request.prefix[-_TAIL:],
            request.suffix[:_TAIL],
            text,
            model,
            arm,
        )
        key = (entry.uri, entry.prefix_len, entry.prefix_tail, entry.suffix_head)
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def lookup(self, request: CompletionRequest) -> str | None:
        """The rest of a cached suggestion for this cursor state, or None."""
        found = self.lookup_entry(request)
        return found[0] if found is not None else None

    def lookup_entry(self, request: CompletionRequest) -> tuple[str, _Shown] | None:
        """The rest of a cached suggestion and the entry it comes from (its model), or None."""
        n = len(request.prefix)
        head = request.suffix[:_TAIL]
        with self._lock:
            entries = list(reversed(self._entries.values()))
        for e in entries:
            typed = n - e.prefix_len
            if e.uri != request.uri or e.suffix_head != head or not 0 <= typed < len(e.text):
                continue
            if typed == 0:
                if request.prefix.endswith(e.prefix_tail):
                    return e.text, e
                continue
            if request.prefix.endswith(e.prefix_tail + e.text[:typed]):
                return e.text[typed:], e
        return None


def build_prompt(request: CompletionRequest, backend: Backend, config: EngineConfig) -> CompletionPrompt:
    """The FIM prompt for a request (the benchmark rebuilds identical prompts with it)."""
    return completion.build_prompt(
        request.prefix,
        request.suffix,
        info=backend.info,
        tokenize=backend.tokenize,
        settings=config.settings(),
        path=request.path,
        extra_files=request.extra_files,
    )


class CompletionEngine:
    """Suggestions for cursor states, one generation at a time on a worker thread."""

    def __init__(
        self,
        config: EngineConfig | None = None,
        *,
        backend: Backend | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.config = config or EngineConfig()
        self.backend = backend
        self.on_error = on_error
        self.stats = EngineStats()
        self.cache = TypeThroughCache(self.config.cache_size)
        self._prompt_cache: OrderedDict[tuple[str, str], str] = OrderedDict()  # (model, prompt) -> text
        self.canary: tuple[Backend, float] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="potion-generate")
        self._latest = 0
        self._current: CancelToken | None = None
        self._lock = threading.Lock()
        self.busy = threading.Event()  # set while the worker generates (tests, bench)
        self.last: Suggestion | None = None  # the last suggestion answered (potion/status, bench)

    def configure(self, config: EngineConfig) -> None:
        self.config = config
        self.cache.size = config.cache_size

    def clear_cache(self) -> None:
        """Forget cached suggestions (the model changed)."""
        self.cache = TypeThroughCache(self.config.cache_size)
        with self._lock:
            self._prompt_cache.clear()

    def set_canary(self, backend: Backend | None, share: float = 0.0) -> None:
        """Send `share` of the suggestions to `backend` (None: every suggestion to the stable model).
        Another candidate (or none) forgets the cached suggestions, as a new stable model does: a removed
        candidate's answers must not come back from the cache."""
        old = self.canary
        self.canary = (backend, share) if backend is not None and share > 0 else None
        if (old[0] if old else None) is not (self.canary[0] if self.canary else None):
            self.clear_cache()

    def route(self, suggestion_id: str) -> tuple[Backend | None, str]:
        """The backend and arm that answer the suggestion `suggestion_id`."""
        canary = self.canary
        if canary is not None and self.backend is not None and routes_to_canary(suggestion_id, canary[1]):
            return canary[0], CANARY
        return self.backend, STABLE

    def cancel_running(self) -> None:
        with self._lock:
            if self._current is not None:
                self._current.set()

    async def suggest(self, request: CompletionRequest) -> Suggestion | None:
        """The suggestion for a cursor state, or None when superseded, cancelled or without a model.

        Raises asyncio.CancelledError when the awaiting task is cancelled; the generation stops too.
        """
        started = time.perf_counter()
        self.stats.requests += 1
        self._latest += 1
        seq = self._latest
        self.cancel_running()  # whatever runs or waits was for an older cursor state
        cached = self.cache.lookup_entry(request)
        if cached is not None:
            self.stats.cache_hits += 1
            text, entry = cached
            latency_ms = (time.perf_counter() - started) * 1000
            self.last = Suggestion(
                text, cache_hit=True, latency_ms=latency_ms, model=entry.model, arm=entry.arm
            )
            return self.last
        if self.config.debounce_ms > 0:
            await asyncio.sleep(self.config.debounce_ms / 1000)
        if seq != self._latest:
            self.stats.superseded += 1
            return None
        suggestion_id = new_suggestion_id()
        backend, arm = self.route(suggestion_id)
        if backend is None:
            return None
        token = CancelToken()
        with self._lock:
            self._current = token
        ctx = completion.cursor_context(request.prefix, request.suffix)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            self._executor, self._generate, backend, request, ctx, token, suggestion_id, arm
        )
        try:
            suggestion = await future
        except asyncio.CancelledError:
            token.set()
            self.stats.cancelled += 1
            raise
        finally:
            with self._lock:
                if self._current is token:
                    self._current = None
        if token.is_set():  # a newer request came while this one generated
            self.stats.cancelled += 1
            return None
        if suggestion is None:
            return None
        suggestion.latency_ms = (time.perf_counter() - started) * 1000
        self.last = suggestion
        if suggestion.text:
            self.cache.store(request, suggestion.text, suggestion.model, suggestion.arm)
        return suggestion

    def _generate(
        self,
        backend: Backend,
        request: CompletionRequest,
        ctx: CursorContext,
        cancel: CancelToken,
        suggestion_id: str,
        arm: str,
    ) -> Suggestion | None:
        """Runs on the worker thread: build the prompt, stream tokens, stop early, post-process."""
        if cancel.is_set():
            return None
        model = ""
        try:
            model = backend.info.name
            prompt = build_prompt(request, backend, self.config)
            with self._lock:
                hit = self._prompt_cache.get((model, prompt.text))
            if hit is not None:
                self.stats.cache_hits += 1
                return Suggestion(hit, id=suggestion_id, cache_hit=True, model=model, arm=arm)
            self.stats.generations += 1
            self.busy.set()
            settings = self.config.settings()
            result = completion.generate(
                backend,
                prompt,
                CompletionStream(ctx, indent=prompt.indent, settings=settings),
                max_tokens=settings.max_tokens,
                cancel=cancel,
                time_budget_s=self.config.time_budget_ms / 1000,
            )
            if result.cancelled:
                return None
            with self._lock:
                self._prompt_cache[(model, prompt.text)] = result.text
                while len(self._prompt_cache) > self.config.cache_size:
                    self._prompt_cache.popitem(last=False)
            return Suggestion(
                result.text,
                id=suggestion_id,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                timed_out=result.timed_out,
                model=model,
                arm=arm,
            )
        except PotionError as exc:
            self._count_error(model)
            log.warning("generation failed: %s", exc.user_message())
            if self.on_error is not None:
                self.on_error(exc)
            return None
        except Exception as exc:  # a backend bug must not take the language server down with it
            self._count_error(model)
            log.exception("generation crashed")
            if self.on_error is not None:
                self.on_error(exc)
            return None
        finally:
            self.busy.clear()

    def _count_error(self, model: str) -> None:
        self.stats.errors += 1
        with self._lock:  # a new dict each time: a metrics scrape reads it from another thread
            counts = self.stats.errors_by_model
            self.stats.errors_by_model = {**counts, model: counts.get(model, 0) + 1}

    async def run_exclusive(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the generation thread, after any running generation: llama.cpp runs one at a time,
        so other model work (code actions' chat) queues behind suggestions instead of beside them."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def close(self) -> None:
        self.cancel_running()
        self._executor.shutdown(wait=False, cancel_futures=True)
