"""Per-model views of the telemetry: `potion stats --by-model` and `potion stats --prometheus`.

Rows recorded before the telemetry knew the model (schema < 3) count as model "" on the stable arm.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from lsp.telemetry import connect, damaged, default_path
from potion.abtest import Comparison, ModelSample, compare
from potion.backends.canary import CANARY, STABLE

_COLUMNS = (
    "id",
    "ts",
    "kind",
    "latency_ms",
    "completion_tokens",
    "shown",
    "accepted",
    "cache_hit",
    "timed_out",
    "model",
    "arm",
)


def rows(path: Path | None = None, *, since: float | None = None) -> list[dict[str, Any]]:
    """The recorded suggestions as dicts (oldest first); [] when there is no database yet."""
    path = path or default_path()
    if not path.exists():
        return []
    db = connect(path, check=True)  # a damaged page must not pass off old rows as current
    try:
        where, args = ("WHERE ts >= ?", (since,)) if since is not None else ("", ())
        result = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM suggestions {where} ORDER BY ts", args)
        return [dict(zip(_COLUMNS, row, strict=True)) for row in result.fetchall()]
    except sqlite3.DatabaseError as exc:
        raise damaged(path, exc) from exc
    finally:
        db.close()


def samples(records: list[dict[str, Any]]) -> list[ModelSample]:
    """One sample per (model, arm), the most used first."""
    groups: dict[tuple[str, str], ModelSample] = {}
    for row in records:
        key = (row["model"] or "", row["arm"] or STABLE)
        sample = groups.get(key)
        if sample is None:
            sample = groups[key] = ModelSample(model=key[0], arm=key[1])
        sample.suggestions += 1
        sample.shown += int(bool(row["shown"]))
        sample.accepted += int(bool(row["accepted"]))
        if row["cache_hit"]:
            sample.cache_hits += 1
        else:
            sample.generations += 1
            sample.timed_out += int(bool(row["timed_out"]))
            sample.latencies_ms.append(float(row["latency_ms"]))
    return sorted(groups.values(), key=lambda s: (-s.suggestions, s.arm, s.model))


def comparison(groups: list[ModelSample], *, min_samples: int) -> Comparison | None:
    """The busiest canary model against the busiest stable one; None without both."""
    stable = next((s for s in groups if s.arm == STABLE), None)
    candidate = next((s for s in groups if s.arm == CANARY), None)
    if stable is None or candidate is None:
        return None
    return compare(stable, candidate, min_samples=min_samples)
