"""Checkpoints that are either complete or absent.

The Trainer writes each checkpoint (adapter, optimizer, scheduler, RNG states, trainer state with the data
position) into `checkpoints/.staging/`; once it is fully written a sha256 manifest is added and the folder
is renamed to `checkpoints/step-000200/` (steps count across both stages). Only the last K are kept. A
failure while writing (a full disk) leaves the staging folder behind and every published checkpoint intact.
On resume the newest checkpoint whose manifest matches is used; a corrupt one is skipped with a warning.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from potion.registry import sha256_file
from trainer.errors import CheckpointError

MANIFEST = "potion_manifest.json"
STAGING = ".staging"
_STEP = re.compile(r"^step-(\d{6,})$")


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    step: int  # across stages
    stage: int
    stage_step: int  # the Trainer's own global step within its stage


def step_dirs(root: Path) -> list[Path]:
    """Published checkpoints, newest first."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found, reverse=True)]


def write_manifest(folder: Path, extra: dict[str, Any]) -> None:
    files = {
        str(p.relative_to(folder)): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    (folder / MANIFEST).write_text(json.dumps({**extra, "files": files}, indent=1) + "\n")


def verify(folder: Path) -> Checkpoint:
    """The checkpoint in `folder` if every file matches its manifest, else CheckpointError saying why."""
    manifest = folder / MANIFEST
    try:
        data = json.loads(manifest.read_text())
        files = data["files"]
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{folder} has no readable manifest ({type(exc).__name__})") from exc
    for rel, digest in files.items():
        path = folder / rel
        if not path.is_file():
            raise CheckpointError(f"{folder} is missing {rel}")
        if sha256_file(path) != digest:
            raise CheckpointError(f"{folder}/{rel} does not match its sha256")
    return Checkpoint(folder, int(data["step"]), int(data["stage"]), int(data["stage_step"]))


def latest_valid(root: Path) -> Checkpoint:
    """The newest checkpoint that verifies; older ones are tried after a warning for each corrupt one."""
    dirs = step_dirs(root)
    if not dirs:
        raise CheckpointError(f"no checkpoint to resume from in {root}", hint="run without --resume to start")
    for folder in dirs:
        try:
            return verify(folder)
        except CheckpointError as exc:
            warnings.warn(f"skipping corrupt checkpoint: {exc.message}", stacklevel=2)
    raise CheckpointError(
        f"every checkpoint in {root} is corrupt", hint="start the run again without --resume"
    )


class PublishCheckpoints(TrainerCallback):
    """After the Trainer saved into the staging folder: manifest, rename to step-N, keep the last K."""

    def __init__(self, root: Path, *, stage: int, offset: int, keep: int) -> None:
        self.root = root
        self.stage = stage
        self.offset = offset
        self.keep = keep

    def on_save(self, args, state, control, **kwargs):
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()  # every rank has written its RNG state into the staging folder
        if state.is_world_process_zero:
            staged = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            step = self.offset + state.global_step
            write_manifest(staged, {"step": step, "stage": self.stage, "stage_step": state.global_step})
            final = self.root / f"step-{step:06d}"
            if final.exists():  # a checkpoint from before a resume, at the same step: replaced whole
                shutil.rmtree(final)
            os.replace(staged, final)
            for old in step_dirs(self.root)[self.keep :]:
                shutil.rmtree(old, ignore_errors=True)
        if dist.is_available() and dist.is_initialized():
            dist.barrier()
        return control
