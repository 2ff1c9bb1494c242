"""A run's attempts and metrics as files (`attempts.jsonl`, `metrics.jsonl`): plain JSON, no torch, so the
evaluations can read how long a run took."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


ATTEMPTS = "attempts.jsonl"


def begin_attempt(run_dir: Path, resumed_from: int | None, started: float) -> int:
    """Records that a process started (at `started`, a time.time()) or resumed the run; returns its
    attempt number (1, 2, ...)."""
    path = run_dir / ATTEMPTS
    previous = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    attempt = 1 + max((a["attempt"] for a in previous), default=0)
    with open(path, "a") as f:
        f.write(json.dumps({"attempt": attempt, "started": started, "resumed_from": resumed_from}) + "\n")
    return attempt


def end_attempt(run_dir: Path, attempt: int) -> None:
    with open(run_dir / ATTEMPTS, "a") as f:
        f.write(json.dumps({"attempt": attempt, "finished": time.time()}) + "\n")


def attempt_walls(run_dir: Path, metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Wall time of every attempt: start to finish, or to its last logged step when it was killed."""
    path = run_dir / ATTEMPTS
    if not path.is_file():
        return []
    out: dict[int, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        event = json.loads(line)
        entry = out.setdefault(event["attempt"], {"attempt": event["attempt"]})
        entry.update({k: v for k, v in event.items() if k != "attempt"})
    for n, entry in out.items():
        end = entry.get("finished") or max(
            (m["time"] for m in metrics if m.get("attempt") == n and "time" in m), default=entry["started"]
        )
        entry["wall_s"] = end - entry["started"]
        entry["completed"] = "finished" in entry
    return [out[n] for n in sorted(out)]


def run_wall_s(run_dir: Path) -> float | None:
    """The run's wall time over every attempt (None for a run that recorded no attempts)."""
    attempts = attempt_walls(run_dir, read_metrics(run_dir / "metrics.jsonl"))
    return sum(a["wall_s"] for a in attempts) if attempts else None
