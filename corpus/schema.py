"""The dataset layout the corpus writes and the trainer reads (DESIGN.md: corpus -> trainer).

A built corpus is a folder:

    DIR/manifest.json                 sources, counts per stage, sha256 of every file below
    DIR/stage1/train.parquet          `text` rows: whole files (FIM is applied at training time)
    DIR/stage1/validation.parquet
    DIR/stage2/train.parquet          `messages` rows: [{"role": "system"|"user"|"assistant", "content": str}]
    DIR/stage2/validation.parquet

Every row also carries its provenance: `source` (where it came from: `debian:elixir-lang`, `hex:jason`,
`dir:/path`), `license` (SPDX), `path` (inside its project), `sha` (sha256 of the original file's bytes),
and `project` (the repository, package or OTP application: the unit of the train/validation split).
Stage-2 rows add `task` (`doc_to_impl`, `impl_to_doc`, `doctest_to_fn`, `behaviour_to_module`, `explain`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

PROVENANCE = ("source", "license", "path", "sha", "project")
STAGE1_COLUMNS = ("text", *PROVENANCE)
STAGE2_COLUMNS = ("messages", "task", *PROVENANCE)
SPLITS = ("train", "validation")
STAGES = {"stage1": STAGE1_COLUMNS, "stage2": STAGE2_COLUMNS}
MANIFEST = "manifest.json"


class SchemaError(ValueError):
    """A dataset that is not what the trainer reads: the message names the file and the columns."""


def split_path(root: Path | str, stage: str, split: str) -> Path:
    """`DIR/stage1/train.parquet` and friends."""
    if stage not in STAGES:
        raise SchemaError(f"unknown stage {stage!r}: expected one of {', '.join(STAGES)}")
    if split not in SPLITS:
        raise SchemaError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    return Path(root) / stage / f"{split}.parquet"


def check_columns(columns: Iterable[str], stage: str, *, where: str = "dataset") -> None:
    """Raise SchemaError naming what is missing when `columns` lack what `stage` needs."""
    have = set(columns)
    missing = [c for c in STAGES[stage] if c not in have]
    if missing:
        raise SchemaError(
            f"{where} is not a {stage} dataset: missing column(s) {', '.join(missing)} "
            f"(has {', '.join(sorted(have)) or 'none'}; expected {', '.join(STAGES[stage])})"
        )


def check_messages(messages: list[dict], *, where: str = "row") -> None:
    """A stage-2 conversation: roles in order (optional system, then user/assistant turns), text content."""
    roles = [m.get("role") for m in messages]
    if roles and roles[0] == "system":
        roles = roles[1:]
    if (
        not roles
        or len(roles) % 2
        or any(r != ("user" if i % 2 == 0 else "assistant") for i, r in enumerate(roles))
    ):
        raise SchemaError(f"{where}: messages must be [system], then user/assistant pairs; got {roles}")
    for m in messages:
        if not isinstance(m.get("content"), str):
            raise SchemaError(f"{where}: every message needs text content")
