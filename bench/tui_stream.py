"""Streaming through the real chat app (headless) while typing: does the display keep up, does typing stall?

A scripted backend emits a long Markdown answer (prose and Elixir code blocks) at a fixed token rate.
While it streams, the benchmark types into the message box and times each keypress end to end (the key
is posted as the terminal driver posts it, until the message box holds it). It reports

- stream_ratio: display tokens/s over backend tokens/s, where the display rate counts until the last
  token is on screen (target >= 0.95), and
- keypress_p95_ms: 95th percentile keypress latency during the stream (target <= 50).

The baseline is the naive design the app avoids: the same Markdown widget, one `append` per token
through `call_from_thread`, measured in the same run.

    .venv/bin/python bench/tui_stream.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual import events, work  # noqa: E402
from textual.app import App, ComposeResult  # noqa: E402
from textual.containers import VerticalScroll  # noqa: E402
from textual.widgets import Input, Markdown  # noqa: E402

from potion.backends.base import CancelToken, GenerationStats, ModelInfo  # noqa: E402
from potion.backends.fake import fake_pieces  # noqa: E402

SECTION = """Here is how a `GenServer` keeps state and why the callbacks are split:

```elixir
defmodule MyApp.Counter do
  use GenServer

  def start_link(initial), do: GenServer.start_link(__MODULE__, initial, name: __MODULE__)
  def increment(by \\\\ 1), do: GenServer.cast(__MODULE__, {:increment, by})
  def value, do: GenServer.call(__MODULE__, :value)

  @impl true
  def init(initial) when is_integer(initial), do: {:ok, initial}

  @impl true
  def handle_cast({:increment, by}, count), do: {:noreply, count + by}

  @impl true
  def handle_call(:value, _from, count), do: {:reply, count, count}
end
```

The client functions run in the caller's process; the callbacks run in the server. Supervise it with
`children = [{MyApp.Counter, 0}]` and **never** block in `handle_call` for long work.

"""


class PacedBackend:
    """Emits `pieces` at a fixed rate (scheduled against a start time, so sleeps do not drift)."""

    def __init__(self, pieces: list[str], rate: float) -> None:
        self.pieces, self.rate = pieces, rate
        self.last_stats = GenerationStats()
        self.first_at = self.last_at = 0.0

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(name="paced", n_ctx=32768)

    def load(self) -> None:
        pass

    def chat(
        self, messages: Sequence[dict[str, str]], *, cancel: CancelToken | None = None, **_
    ) -> Iterator[str]:
        start = time.perf_counter()
        for i, piece in enumerate(self.pieces):
            if cancel is not None and cancel.is_set():
                return
            delay = start + i / self.rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            now = time.perf_counter()
            if i == 0:
                self.first_at = now
            self.last_at = now
            self.last_stats.completion_tokens = i + 1
            yield piece

    def complete(self, prompt: str, **kwargs) -> Iterator[str]:
        return self.chat([{"role": "user", "content": prompt}], **kwargs)

    def tokenize(self, text: str) -> list[int]:
        return [0] * len(fake_pieces(text))

    def close(self) -> None:
        pass


async def _type_while(app, streaming, prompt_text, keys: str) -> list[float]:
    """Type while `streaming()` holds; return each key's latency in ms.

    A key is posted to the app the way the terminal driver posts it, and timed until the focused box's
    text has changed: the wait a user feels, less the next screen paint (~16 ms at 60 fps).
    """
    latencies = []
    i = 0
    while streaming():
        key = keys[i % len(keys)]
        i += 1
        before = len(prompt_text())
        t0 = time.perf_counter()
        app.post_message(events.Key(key if key != " " else "space", key))
        while len(prompt_text()) == before:
            if time.perf_counter() - t0 > 10:
                raise RuntimeError("a keypress was lost during the stream")
            await asyncio.sleep(0.001)
        latencies.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(0.03)  # a fast typist: ~30 keys/s
    return latencies


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else (values[0] if values else 0.0)


async def run_potion(pieces: list[str], rate: float) -> dict:
    from tui.app import PotionChat
    from tui.history import HistoryStore

    backend = PacedBackend(pieces, rate)
    app = PotionChat(backend, store=HistoryStore(":memory:"), max_tokens=len(pieces) + 10)
    async with app.run_test(size=(100, 40)) as pilot:
        while app.loading:
            await pilot.pause(0.01)
        screen = app.chat_screen
        shown: list[float] = []
        flush = screen._flush

        async def timed_flush() -> None:
            # Note the moment the last token reaches the answer's Markdown.
            await flush()
            if not shown and screen.displayed_tokens >= len(pieces):
                shown.append(time.perf_counter())

        screen._flush = timed_flush  # the flush timer is created after this, on Enter
        screen.prompt.load_text("explain GenServer")
        await pilot.press("enter")
        while backend.first_at == 0.0:
            await pilot.pause(0.005)
        latencies = await _type_while(
            app, lambda: screen.generating, lambda: screen.prompt.text, "defmodule "
        )
        displayed = screen.displayed_tokens
    return _result(len(pieces), backend, shown[0] if shown else time.perf_counter(), displayed, latencies)


class NaiveApp(App[None]):
    """The baseline: one Markdown.append per token, posted from the worker thread."""

    def __init__(self, backend: PacedBackend) -> None:
        super().__init__()
        self.backend = backend
        self.displayed = 0
        self.done = threading.Event()
        self.finished_at = 0.0

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown("")
        yield Input()

    async def _append(self, piece: str) -> None:
        await self.query_one(Markdown).append(piece)
        self.displayed += 1
        if self.displayed == len(self.backend.pieces):
            self.finished_at = time.perf_counter()

    @work(thread=True)
    def stream(self) -> None:
        for piece in self.backend.chat([]):
            self.call_from_thread(self._append, piece)
        self.done.set()


async def run_naive(pieces: list[str], rate: float) -> dict:
    backend = PacedBackend(pieces, rate)
    app = NaiveApp(backend)
    async with app.run_test(size=(100, 40)) as pilot:
        app.query_one(Input).focus()
        app.stream()
        while backend.first_at == 0.0:
            await pilot.pause(0.005)
        box = app.query_one(Input)
        latencies = await _type_while(
            app, lambda: app.displayed < len(pieces), lambda: box.value, "defmodule "
        )
        shown_at = app.finished_at or time.perf_counter()
    return _result(len(pieces), backend, shown_at, app.displayed, latencies)


def _result(n: int, backend: PacedBackend, shown_at: float, displayed: int, latencies: list[float]) -> dict:
    backend_s = backend.last_at - backend.first_at
    display_s = shown_at - backend.first_at
    return {
        "tokens": n,
        "displayed_tokens": displayed,
        "backend_tokens_per_s": round(n / backend_s, 1),
        "display_tokens_per_s": round(n / display_s, 1),
        "stream_ratio": round(backend_s / display_s, 3),
        "keypresses": len(latencies),
        "keypress_p50_ms": round(statistics.median(latencies), 1) if latencies else 0.0,
        "keypress_p95_ms": round(_p95(latencies), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a ~4 s stream instead of ~10 s")
    parser.add_argument("--rate", type=float, default=None, help="backend tokens per second")
    args = parser.parse_args()
    tokens = 400 if args.quick else 2000
    rate = args.rate or (100.0 if args.quick else 200.0)
    text = SECTION * (tokens // len(fake_pieces(SECTION)) + 1)
    pieces = fake_pieces(text)[:tokens]
    os.environ.setdefault("POTION_HOME", tempfile.mkdtemp(prefix="potion-bench-"))

    potion = asyncio.run(run_potion(pieces, rate))
    naive = asyncio.run(run_naive(pieces, rate))
    print(f"potion (buffered, 50 ms flush): {potion}", file=sys.stderr)
    print(f"baseline (append per token):    {naive}", file=sys.stderr)
    result = {
        "bench": "tui_stream",
        "quick": args.quick,
        "stream_ratio": potion["stream_ratio"],
        "keypress_p95_ms": potion["keypress_p95_ms"],
        "display_tokens_per_s": potion["display_tokens_per_s"],
        "backend_tokens_per_s": potion["backend_tokens_per_s"],
        "targets": {"stream_ratio": ">= 0.95", "keypress_p95_ms": "<= 50"},
        "meets_targets": potion["stream_ratio"] >= 0.95 and potion["keypress_p95_ms"] <= 50,
        "potion": potion,
        "baseline_naive": naive,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
