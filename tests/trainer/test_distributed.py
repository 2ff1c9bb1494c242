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


def torchrun_train(cfg, tmp_path: Path) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """`potion train` of `cfg` in 2 CPU processes over gloo; each rank's report from ddp_worker.py."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torch ships torchrun"
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
    return result, [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_processes_over_gloo_agree(tiny_cfg, tmp_path):
    cfg = tiny_cfg(seq_len=32, batch_size=1, stage1_steps=2, stage2_steps=0, save_steps=2, eval_steps=10)
    _, ranks = torchrun_train(cfg, tmp_path)
    assert {r["world"] for r in ranks} == {2} and {r["backend"] for r in ranks} == {"gloo"}
    assert ranks[0]["sha"] == ranks[1]["sha"]
    assert {s for r in ranks for s in r["four_bit_storage"]} == {"torch.uint8"}
    run_dir = Path(cfg.output_dir) / cfg.name
    assert (run_dir / "adapter" / "potion_adapter.json").is_file()  # written once, by rank 0
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["step-000002"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_fsdp_config_over_gloo_stores_4bit_in_the_compute_dtype_and_says_fsdp_is_off_on_cpu(
    tiny_cfg, tmp_path
):
    """FSDP-QLoRA's part that runs here: the 4-bit weights stored in the compute dtype (what lets FSDP
    shard them), loaded and trained in 2 processes. transformers enables FSDP only on accelerators, so
    on CPU the run is data-parallel, and says so instead of pretending to shard."""
    cfg = tiny_cfg(
        seq_len=32, batch_size=1, stage1_steps=2, stage2_steps=0, save_steps=10, eval_steps=10, fsdp=True
    )
    result, ranks = torchrun_train(cfg, tmp_path)
    assert ranks[0]["sha"] == ranks[1]["sha"]
    assert {s for r in ranks for s in r["four_bit_storage"]} == {"torch.float32"}  # fp32 compute on CPU
    assert "fsdp: true, but FSDP is not active here (distributed type MULTI_CPU" in result.stderr
