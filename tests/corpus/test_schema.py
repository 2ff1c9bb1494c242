"""The corpus -> trainer dataset layout (corpus.schema)."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus.schema import SchemaError, check_columns, check_messages, split_path


def test_split_paths_and_bad_names():
    assert split_path("out", "stage1", "train") == Path("out/stage1/train.parquet")
    assert split_path(Path("o"), "stage2", "validation") == Path("o/stage2/validation.parquet")
    with pytest.raises(SchemaError, match="stage3"):
        split_path("out", "stage3", "train")
    with pytest.raises(SchemaError, match="test"):
        split_path("out", "stage1", "test")


def test_missing_columns_are_named():
    check_columns(["text", "source", "license", "path", "sha", "project", "extra"], "stage1")
    with pytest.raises(SchemaError, match="missing column\\(s\\) messages, task") as exc:
        check_columns(["text", "source", "license", "path", "sha", "project"], "stage2", where="x.parquet")
    assert "x.parquet" in str(exc.value)


def test_message_order():
    check_messages([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    check_messages(
        [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
        ]
    )
    for bad in (
        [],
        [{"role": "user", "content": "a"}],
        [{"role": "assistant", "content": "b"}, {"role": "user", "content": "a"}],
    ):
        with pytest.raises(SchemaError):
            check_messages(bad)
    with pytest.raises(SchemaError, match="text content"):
        check_messages([{"role": "user", "content": None}, {"role": "assistant", "content": "b"}])
