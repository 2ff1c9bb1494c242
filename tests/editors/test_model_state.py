"""`potion/status` tells the editors' status bar the model's state: loading, ready or error (and why)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lsp"))
from lsp_helpers import RawLsp  # noqa: E402


@pytest.fixture
def raw(tmp_path: Path):
    home = tmp_path / "potion-home"
    home.mkdir()
    server = RawLsp(home)
    yield server
    server.close()


def _start(raw: RawLsp, fake: dict) -> None:
    # Generous: on a loaded machine the server's imports alone can take a while.
    raw.call(
        "initialize",
        {
            "processId": None,
            "rootUri": None,
            "capabilities": {},
            "initializationOptions": {"backend": "fake", "fake": fake},
        },
        timeout=120,
    )
    raw.notify("initialized", {})


def _state_until(raw: RawLsp, wanted: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = raw.call("potion/status", {}, timeout=60)["result"]
        if status["model_state"] == wanted:
            return status
        assert time.monotonic() < deadline, f"model_state stayed {status['model_state']!r}"
        raw._pump(0.02)


def test_state_goes_from_loading_to_ready(raw: RawLsp) -> None:
    _start(raw, {"responses": ["x"], "load_delay_ms": 2000})
    first = raw.call("potion/status", {}, timeout=60)["result"]
    assert first["model_state"] == "loading" and first["model_error"] is None
    ready = _state_until(raw, "ready")
    assert ready["model_ready"] is True and ready["model_error"] is None


def test_a_failed_load_is_an_error_with_its_reason_until_a_new_model_loads(raw: RawLsp) -> None:
    _start(raw, {"responses": ["x"], "load_error": "no such model: nope"})
    failed = _state_until(raw, "error")
    assert "no such model: nope" in failed["model_error"] and failed["model_ready"] is False
    # Other settings leave the error as it is; a new model clears it.
    raw.notify("workspace/didChangeConfiguration", {"settings": {"potion": {"debounceMs": 20}}})
    assert raw.call("potion/status", {}, timeout=60)["result"]["model_state"] == "error"
    raw.notify("workspace/didChangeConfiguration", {"settings": {"potion": {"fake": {"responses": ["y"]}}}})
    assert _state_until(raw, "ready")["model_error"] is None
