"""Fixtures for the chat tests: a workdir with an Elixir file, a polling helper (POTION_HOME: potion_home)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

STACK_EX = """defmodule MyApp.Stack do
  @moduledoc "A stack server."
  use GenServer

  def start_link(opts \\\\ []) do
    GenServer.start_link(__MODULE__, [], opts)
  end

  @spec push(pid(), term()) :: :ok
  def push(pid, item) do
    GenServer.cast(pid, {:push, item})
  end

  @impl true
  def init(items), do: {:ok, items}

  @impl true
  def handle_cast({:push, item}, items) do
    {:noreply, [item | items]}
  end
end
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "lib" / "my_app").mkdir(parents=True)
    (root / "lib" / "my_app" / "stack.ex").write_text(STACK_EX)
    return root


async def _wait_for(pilot, condition: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Poll the app until `condition()` holds, letting it process messages in between."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.02)


@pytest.fixture
def wait_for():
    """`await wait_for(pilot, lambda: ..., what="...")`: poll with a timeout, never a fixed sleep."""
    return _wait_for
