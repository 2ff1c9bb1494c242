"""The same `potion train` under torchrun: 2 CPU processes over gloo (DDP) end with the same weights."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.config import TrainConfig, save_config

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_processes_over_gloo_agree(tiny_cfg, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torch ships torchrun"
    cfg = tiny_cfg(seq_len=32, batch_size=1, stage1_steps=2, stage2_steps=0, save_steps=2, eval_steps=10)
    config = tmp_path / "ddp.yaml"
    save_config(TrainConfig(**cfg.to_dict()), config)
    env = {
        **os.environ,
        "PYTHONPATH": str(HERE.parents[1]),
        "OMP_NUM_THREADS": "1",
        "MASTER_ADDR": "127.0.0.1",
    }
    result = subprocess.run(
        [
            torchrun,
            "--nproc_per_node=2",
            f"--master_port={free_port()}",
            str(HERE / "ddp_worker.py"),
            str(config),
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert {r["world"] for r in ranks} == {2} and {r["backend"] for r in ranks} == {"gloo"}
    assert ranks[0]["sha"] == ranks[1]["sha"]
    run_dir = Path(cfg.output_dir) / cfg.name
    assert (run_dir / "adapter" / "potion_adapter.json").is_file()  # written once, by rank 0
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["step-000002"]
