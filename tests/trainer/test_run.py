"""A whole run on the tiny model: the run directory, the adapter sidecar and registry, exact resume after
SIGKILL, and the bad-input paths (run dir taken, full disk, NaN loss)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from trainer import adapters, checkpoints
from trainer.attempts import attempt_walls, read_metrics, run_wall_s
from trainer.config import TrainConfig, save_config
from trainer.errors import CheckpointError, ConfigError, DivergedError, TrainerError
from trainer.report import truncate_metrics
from trainer.run import train

ROOT = Path(__file__).resolve().parents[2]


def two_stage(tiny_cfg, **kw) -> TrainConfig:
    values = dict(
        seq_len=48,
        batch_size=1,
        stage1_steps=4,
        stage2_steps=2,
        save_steps=2,
        eval_steps=2,
        ewc_lambda=1.0,
        ewc_batches=2,
        long_sequences="drop",
        lr_multipliers={"early": 0.5},
        max_eval_rows=2,
        stage1_lr=1e-3,
        keep_checkpoints=2,
    )
    values.update(kw)
    return tiny_cfg(**values)


def losses(run_dir: Path) -> list[tuple[int, int, float]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["stage"], r["step"], round(r["loss"], 6)) for r in rows if "loss" in r]


def potion_train(config: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "potion.cli", "train", "--config", str(config), "--no-progress", *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_stage_run_then_sigkill_and_exact_resume(tiny_cfg, tmp_path, capsys):
    cfg = two_stage(tiny_cfg)
    run_dir = train(cfg, progress=False)
    out = capsys.readouterr().out
    # The learning-rate groups actually built are printed, with their multipliers.
    assert "early" in out and "late" in out and "lr 0.0005" in out and "lr 0.001" in out
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "loss.png",
        "report.md",
        "adapter/adapter_model.safetensors",
    ):
        assert (run_dir / name).is_file(), name
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["stage1_steps"] == 4
    metrics = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if "loss" in m] == [1, 2, 3, 4, 5, 6]
    assert any("eval_perplexity" in m and m["stage"] == 2 for m in metrics)
    assert all("ewc_penalty" in m for m in metrics if "loss" in m and m["stage"] == 2)
    assert [p.name for p in checkpoints.step_dirs(run_dir / "checkpoints")] == ["step-000006", "step-000004"]
    report = (run_dir / "report.md").read_text()
    for needle in ("wall time", "peak memory", "tokens/s", "stage1_train", "eval ppl", "stage1_steps: 4"):
        assert needle in report
    sidecar = json.loads((run_dir / "adapter" / "potion_adapter.json").read_text())
    assert sidecar["base"]["architecture"] == "MistralForCausalLM"
    assert sidecar["metrics"]["stage2_eval_loss"] > 0
    assert adapters.resolve(sidecar["id"]).adapter_dir == str((run_dir / "adapter").resolve())

    # The same config in a subprocess, killed with SIGKILL mid stage 1, then resumed.
    config = tmp_path / "resume.yaml"
    save_config(TrainConfig(**{**cfg.to_dict(), "name": "killed"}), config)
    killed = tmp_path / "runs" / "killed"
    proc = potion_train(config)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        done = losses(killed) if (killed / "metrics.jsonl").is_file() else []
        if any(step >= 3 for _, step, _ in done):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert proc.wait() == -signal.SIGKILL, proc.stdout.read()
    assert not (killed / "adapter").exists()
    resumed = potion_train(config, "--resume")
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    assert losses(killed) == losses(run_dir)
    # The report's wall time covers both processes: the killed one up to its last step, and the resumed one.
    walls = attempt_walls(killed, read_metrics(killed / "metrics.jsonl"))
    assert [(a["attempt"], a["completed"]) for a in walls] == [(1, False), (2, True)]
    assert walls[1]["resumed_from"] >= 2 and all(a["wall_s"] > 0 for a in walls)
    assert run_wall_s(killed) == pytest.approx(sum(a["wall_s"] for a in walls))
    assert "over 2 attempts" in (killed / "report.md").read_text()
    kept = [json.loads(x) for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert {m["attempt"] for m in kept} == {1, 2}


def test_a_resume_in_stage_2_is_exact_and_needs_the_ewc_state(tiny_cfg, tmp_path):
    cfg = two_stage(tiny_cfg, stage2_steps=4, keep_checkpoints=3)
    run_dir = train(cfg, progress=False)
    assert [p.name for p in checkpoints.step_dirs(run_dir / "checkpoints")][:2] == [
        "step-000008",
        "step-000006",
    ]
    # The same run, as if killed after step 7: its newest checkpoint is step 6, in stage 2.
    again = tmp_path / "runs" / "again"
    shutil.copytree(run_dir, again)
    shutil.rmtree(again / "checkpoints" / "step-000008")
    shutil.rmtree(again / "adapter")
    (again / "report.md").unlink()
    truncate_metrics(again / "metrics.jsonl", 7)
    cfg_again = TrainConfig(**{**cfg.to_dict(), "name": "again"})

    (again / "stage1" / "ewc.pt").rename(tmp_path / "ewc.pt")
    before = {p: p.read_bytes() for p in again.rglob("*") if p.is_file()}
    with pytest.raises(CheckpointError, match="ewc.pt is missing: stage 2 cannot resume with EWC") as info:
        train(cfg_again, resume=True, progress=False)
    assert "ewc_lambda=0" in info.value.user_message()
    assert {p: p.read_bytes() for p in again.rglob("*") if p.is_file()} == before  # metrics kept too

    (tmp_path / "ewc.pt").rename(again / "stage1" / "ewc.pt")
    train(cfg_again, resume=True, progress=False)
    assert losses(again) == losses(run_dir)
    assert (again / "adapter" / "adapter_model.safetensors").is_file()


def test_ewc_without_stage_1_fails_before_anything_loads(tiny_cfg):
    cfg = two_stage(tiny_cfg, stage1_steps=0)
    with pytest.raises(CheckpointError, match="ewc.pt is missing"):
        train(cfg, progress=False)
    assert not (Path(cfg.output_dir) / cfg.name).exists()


def test_run_dir_is_never_overwritten(tiny_cfg):
    cfg = tiny_cfg()
    run_dir = Path(cfg.output_dir) / cfg.name
    run_dir.mkdir(parents=True)
    (run_dir / "notes.txt").write_text("mine")
    with pytest.raises(TrainerError, match="already exists: nothing was overwritten"):
        train(cfg, progress=False)
    assert (run_dir / "notes.txt").read_text() == "mine"
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        train(cfg, resume=True, progress=False)


def test_resume_on_another_base_is_refused_before_anything_loads(tiny_cfg, tiny_home, tmp_path, monkeypatch):
    from trainer.errors import AdapterError
    from trainer.tiny import make_tiny_model

    cfg = tiny_cfg(seq_len=32, batch_size=1, stage1_steps=2, save_steps=2, eval_steps=10)
    run_dir = train(cfg, progress=False)
    trained_on = json.loads((run_dir / "base.json").read_text())
    assert trained_on == adapters.read_sidecar(run_dir / "adapter").base
    with monkeypatch.context() as mp:
        mp.setenv("POTION_HOME", str(tiny_home))  # the tokenizer cache the tiny models share
        other = make_tiny_model("mistral", tmp_path / "other-base", seed=1)  # same shape, other weights
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    cfg.model = str(other)
    with pytest.raises(
        AdapterError, match=r"run run \(step-000002\) was trained on a base with sha256"
    ) as info:
        train(cfg, resume=True, progress=False)
    assert f"--set model={trained_on['spec']}" in info.value.user_message()
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before  # nothing touched


def test_full_disk_while_checkpointing_keeps_the_previous_checkpoint(tiny_cfg, monkeypatch):
    import torch

    cfg = tiny_cfg(seq_len=32, batch_size=1, stage1_steps=4, save_steps=2, eval_steps=10)
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        if "checkpoint-4" in str(f):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(CheckpointError, match="disk is full: checkpoint at step 4 not written") as info:
        train(cfg, progress=False)
    assert "--resume (from step-000002)" in info.value.user_message()
    root = Path(cfg.output_dir) / cfg.name / "checkpoints"
    assert [p.name for p in checkpoints.step_dirs(root)] == ["step-000002"]
    assert checkpoints.verify(root / "step-000002").step == 2
    assert not (root / checkpoints.STAGING).exists()


def test_nan_loss_stops_with_a_clear_message(tiny_cfg, monkeypatch):
    from trainer.hf_trainer import PotionTrainer

    real = PotionTrainer.compute_loss

    def poisoned(self, model, inputs, *args, **kwargs):
        loss = real(self, model, inputs, *args, **kwargs)
        return loss * float("nan") if self.state.global_step >= 1 else loss

    monkeypatch.setattr(PotionTrainer, "compute_loss", poisoned)
    cfg = tiny_cfg(seq_len=32, batch_size=1, stage1_steps=4, save_steps=10, eval_steps=10)
    with pytest.raises(DivergedError, match="stage 1 loss became nan at step 2") as info:
        train(cfg, progress=False)
    assert "lower the learning rate" in info.value.user_message()


def test_fsdp_in_a_single_process_is_a_config_error_before_anything_loads(tiny_cfg):
    cfg = tiny_cfg(seq_len=32, batch_size=1, stage1_steps=1, stage2_steps=0, fsdp=True)
    with pytest.raises(ConfigError, match="fsdp: true shards the model across processes") as info:
        train(cfg, progress=False)
    assert "torchrun" in info.value.user_message() and "fsdp=false" in info.value.user_message()
    assert not (Path(cfg.output_dir) / cfg.name).exists()  # nothing written


def test_corrupt_latest_checkpoint_falls_back_with_a_warning(tmp_path):
    root = tmp_path / "checkpoints"
    for step in (2, 4):
        folder = root / f"step-{step:06d}"
        folder.mkdir(parents=True)
        (folder / "adapter_model.safetensors").write_bytes(bytes([step]) * 100)
        checkpoints.write_manifest(folder, {"step": step, "stage": 1, "stage_step": step})
    assert checkpoints.latest_valid(root).step == 4
    (root / "step-000004" / "adapter_model.safetensors").write_bytes(b"torn")
    with pytest.warns(UserWarning, match="skipping corrupt checkpoint: .*step-000004.*does not match"):
        assert checkpoints.latest_valid(root).step == 2
    (root / "step-000002" / "potion_manifest.json").unlink()
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match="every checkpoint .* is corrupt"):
        checkpoints.latest_valid(root)
