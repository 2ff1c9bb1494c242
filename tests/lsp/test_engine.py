"""The completion engine without a transport: debounce, cancellation, one generation, budget, cache."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from lsp.engine import CompletionEngine, CompletionRequest, EngineConfig, build_prompt
from potion.backends import FakeBackend
from potion.errors import BackendError

pytestmark = pytest.mark.timeout(30)

PREFIX = "defmodule A do\n  def increment do\n    "
SUFFIX = "\n  end\nend\n"
ANSWER = "GenServer.call(__MODULE__, :increment)\n  end"
LONG = " ".join(f"w{i}" for i in range(400))  # one long line: many pieces, no early stop


async def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


def request(prefix: str = PREFIX, suffix: str = SUFFIX, uri: str = "file:///a.ex") -> CompletionRequest:
    return CompletionRequest(uri, prefix, suffix)


def engine(backend, **config) -> CompletionEngine:
    return CompletionEngine(EngineConfig(**{"debounce_ms": 0, **config}), backend=backend)


async def test_suggestion_is_post_processed():
    eng = engine(FakeBackend([ANSWER]))
    suggestion = await eng.suggest(request())
    assert suggestion.text == "GenServer.call(__MODULE__, :increment)"
    assert not suggestion.cache_hit and suggestion.completion_tokens > 0
    assert eng.stats.generations == 1


async def test_no_backend_answers_none_at_once():
    eng = engine(None)
    assert await eng.suggest(request()) is None
    assert eng.stats.generations == 0


async def test_debounce_supersedes_older_requests():
    backend = FakeBackend([ANSWER])
    eng = engine(backend, debounce_ms=50)
    results = await asyncio.gather(*(eng.suggest(request(PREFIX + "x" * i)) for i in range(5)))
    assert results[:4] == [None] * 4
    assert results[4] is not None
    assert eng.stats.superseded == 4 and eng.stats.generations == 1
    assert len(backend.prompts) == 1


async def test_cancelling_the_task_stops_generation_between_tokens():
    backend = FakeBackend([LONG], token_delay=0.01)
    eng = engine(backend, max_tokens=400, time_budget_ms=60_000)
    task = asyncio.ensure_future(eng.suggest(request()))
    await asyncio.to_thread(eng.busy.wait, 5)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The worker notices the token within a piece or two, long before the 800 pieces would end.
    await wait_until(lambda: not eng.busy.is_set())
    assert time.monotonic() - started < 2
    assert backend.last_stats.completion_tokens < 20  # of 800 pieces
    assert eng.stats.cancelled == 1


async def test_newer_request_cancels_running_generation_and_only_one_runs():
    running = 0
    peak = 0
    lock = threading.Lock()

    class Counting(FakeBackend):
        def complete(self, prompt, **kw):
            inner = super().complete(prompt, **kw)

            def gen():
                nonlocal running, peak
                with lock:
                    running += 1
                    peak = max(peak, running)
                try:
                    yield from inner
                finally:
                    with lock:
                        running -= 1

            return gen()

    backend = Counting([LONG, ANSWER], token_delay=0.01)
    eng = engine(backend, max_tokens=400, time_budget_ms=60_000)
    first = asyncio.ensure_future(eng.suggest(request()))
    await asyncio.to_thread(eng.busy.wait, 5)
    second = await eng.suggest(request(PREFIX + "G"))
    assert await first is None  # superseded mid-generation
    assert second is not None and second.text.startswith("GenServer")
    assert peak == 1
    assert eng.stats.cancelled == 1 and eng.stats.generations == 2


async def test_generation_does_not_block_the_event_loop():
    # The model call waits until this coroutine, on the event loop, lets it go: were generation run on
    # the loop, the two would never meet (the gate times out and the suggestion is lost).
    backend = FakeBackend([ANSWER])
    entered, release = threading.Event(), threading.Event()
    original = backend.complete

    def gated(*args, **kwargs):
        entered.set()
        assert release.wait(10), "the event loop never ran while the model generated"
        yield from original(*args, **kwargs)

    backend.complete = gated
    eng = engine(backend)
    task = asyncio.ensure_future(eng.suggest(request()))
    assert await asyncio.to_thread(entered.wait, 10)
    assert not task.done() and eng.busy.is_set()  # mid-generation, and this coroutine still runs
    release.set()
    suggestion = await task
    assert suggestion is not None and suggestion.text == "GenServer.call(__MODULE__, :increment)"


async def test_time_budget_stops_generation_with_partial_text():
    eng = engine(FakeBackend([LONG], token_delay=0.02), max_tokens=400, time_budget_ms=100)
    started = time.monotonic()
    suggestion = await eng.suggest(request())
    assert time.monotonic() - started < 2
    assert suggestion.timed_out
    assert suggestion.text.startswith("w0 w1")
    assert len(suggestion.text) < len(LONG)


async def test_same_cursor_state_is_a_cache_hit():
    backend = FakeBackend([ANSWER])
    eng = engine(backend, debounce_ms=150)
    await eng.suggest(request())
    again = await eng.suggest(request())
    assert again.cache_hit and again.text == "GenServer.call(__MODULE__, :increment)"
    assert again.latency_ms < 10
    assert len(backend.prompts) == 1


async def test_typing_through_a_suggestion_serves_the_rest_without_generation():
    backend = FakeBackend([ANSWER])
    eng = engine(backend, debounce_ms=150)
    first = await eng.suggest(request())
    text = first.text
    for typed in range(1, len(text)):
        hit = await eng.suggest(request(PREFIX + text[:typed]))
        assert hit is not None and hit.cache_hit, typed
        assert hit.text == text[typed:]
        assert hit.latency_ms < 10
    assert len(backend.prompts) == 1
    # Typing something else is a miss.
    backend_before = len(backend.prompts)
    await eng.suggest(request(PREFIX + "Enum"))
    assert len(backend.prompts) == backend_before + 1


async def test_type_through_misses_when_the_suffix_changed():
    eng = engine(FakeBackend([ANSWER, "x"]))
    first = await eng.suggest(request())
    other = await eng.suggest(request(PREFIX + first.text[:3], SUFFIX + "# edited\n"))
    assert not other.cache_hit


async def test_prompt_cache_serves_an_identical_prompt_from_another_document():
    backend = FakeBackend([ANSWER])
    eng = engine(backend)
    await eng.suggest(request(uri="file:///a.ex"))
    hit = await eng.suggest(request(uri="file:///b.ex"))
    assert hit.cache_hit and len(backend.prompts) == 1


async def test_backend_error_answers_none_and_reports():
    errors = []
    eng = CompletionEngine(EngineConfig(debounce_ms=0), backend=FakeBackend([LONG], fail_after=2))
    eng.on_error = errors.append
    assert await eng.suggest(request()) is None
    assert len(errors) == 1 and isinstance(errors[0], BackendError)
    assert eng.stats.errors == 1


async def test_early_stop_saves_tokens():
    backend = FakeBackend(["x = 1\n  end\n\n  def other do\n    :a\n  end\n" * 5])
    eng = engine(backend, max_tokens=200)
    suggestion = await eng.suggest(request())
    assert suggestion.text == "x = 1"
    assert backend.last_stats.completion_tokens < 15


async def test_prompt_leaves_out_the_cursor_indentation_and_the_answer_gets_it_back():
    backend = FakeBackend(["    GenServer.call(__MODULE__, :increment)\n  end"])
    eng = engine(backend)
    suggestion = await eng.suggest(request())
    # The prompt's prefix ends at the line start; the document's 4 spaces are not repeated.
    assert "def increment do\n<|fim_suffix|>" in backend.prompts[0]
    assert suggestion.text == "GenServer.call(__MODULE__, :increment)"


async def test_a_cache_hit_supersedes_an_older_request_still_in_debounce():
    backend = FakeBackend([ANSWER, "other"])
    eng = engine(backend)
    first = await eng.suggest(request())
    slow = CompletionEngine(EngineConfig(debounce_ms=100), backend=backend)
    slow.cache = eng.cache
    older = asyncio.ensure_future(slow.suggest(request(PREFIX + "x")))
    await asyncio.sleep(0)
    hit = await slow.suggest(request(PREFIX + first.text[:2]))
    assert hit.cache_hit
    assert await older is None  # its cursor state is gone: no generation for it
    assert len(backend.prompts) == 1


def test_build_prompt_keeps_a_non_indentation_line_prefix_once():
    assert build_prompt(request("x = 1"), FakeBackend(), EngineConfig()).text.count("x = 1") == 1


async def test_run_exclusive_runs_on_the_generation_thread():
    eng = engine(FakeBackend("x"))
    name = await eng.run_exclusive(lambda: threading.current_thread().name)
    assert name.startswith("potion-generate")
