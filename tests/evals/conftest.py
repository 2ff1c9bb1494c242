"""Fixtures of the evaluation tests: a tiny task suite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_helpers import DOUBLE, SQUARE


@pytest.fixture
def tiny_suite(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.jsonl"
    path.write_text("\n".join(json.dumps(t) for t in (SQUARE, DOUBLE)) + "\n")
    return path
