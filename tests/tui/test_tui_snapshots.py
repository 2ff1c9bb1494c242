"""Snapshots of the main screens at 80x24 and 120x40 (pytest-textual-snapshot; SVGs in __snapshots__).

The history is written straight into the store so the pictures hold no timing-dependent numbers.
Regenerate with `pytest tests/tui/test_tui_snapshots.py --snapshot-update` and look at the SVGs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from potion.backends import FakeBackend, ModelInfo
from potion.errors import BackendError
from tui.app import PotionChat
from tui.history import HistoryStore, default_path

ANSWER = """A `GenServer` keeps state between calls:

```elixir
defmodule MyApp.Counter do
  use GenServer

  def start_link(n), do: GenServer.start_link(__MODULE__, n, name: __MODULE__)
  def increment, do: GenServer.cast(__MODULE__, :inc)

  @impl true
  def init(n), do: {:ok, n}

  @impl true
  def handle_cast(:inc, n), do: {:noreply, n + 1}
end
```

Start it under your application's supervisor."""


def _history(with_second: bool) -> None:
    store = HistoryStore.open(default_path())
    if with_second:
        other = store.new_session("Ecto changesets")
        store.add_message(other.id, "user", "How do I validate an email?")
    session = store.new_session("Counter with GenServer")
    store.add_message(session.id, "user", "How do I keep a counter in a process?")
    store.add_message(session.id, "assistant", ANSWER, meta={"tokens": 118})
    store.close()


def _app(tmp_path: Path, **kwargs) -> PotionChat:
    backend = kwargs.pop("backend", None) or FakeBackend(
        "ok", info=ModelInfo(name="qwen2.5-coder-0.5b", n_ctx=4096)
    )
    return PotionChat(backend, workdir=tmp_path, **kwargs)


async def _loaded(pilot) -> None:
    while pilot.app.loading:
        await pilot.pause(0.02)
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_chat_screen(snap_compare, potion_home: Path, tmp_path: Path, size: tuple[int, int]) -> None:
    _history(with_second=True)
    assert snap_compare(_app(tmp_path), terminal_size=size, run_before=_loaded)


def test_welcome_80x24(snap_compare, potion_home: Path, tmp_path: Path) -> None:
    assert snap_compare(_app(tmp_path), terminal_size=(80, 24), run_before=_loaded)


def test_help_80x24(snap_compare, potion_home: Path, tmp_path: Path) -> None:
    assert snap_compare(_app(tmp_path), terminal_size=(80, 24), press=["f1"], run_before=_loaded)


def test_scaffold_preview_120x40(snap_compare, potion_home: Path, tmp_path: Path) -> None:
    async def run_before(pilot) -> None:
        await _loaded(pilot)
        pilot.app.chat_screen.prompt.load_text("/scaffold GenServer MyApp.Cache")
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(_app(tmp_path), terminal_size=(120, 40), run_before=run_before)


def test_model_failed_80x24(snap_compare, potion_home: Path, tmp_path: Path) -> None:
    _history(with_second=False)
    backend = FakeBackend(
        "x", load_error=BackendError("model.gguf is not a GGUF file", hint="re-download it")
    )
    assert snap_compare(_app(tmp_path, backend=backend), terminal_size=(80, 24), run_before=_loaded)
