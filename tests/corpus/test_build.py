"""`potion corpus build` end to end on the fixture Mix project: datasets and manifest, licence gate,
secrets, dedup, decontamination, split, workers, and kill-and-resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from corpus.build import build, work_dir
from corpus.config import load_config, parse_config
from corpus.errors import ConfigError, OutputExists
from corpus.output import read_manifest, verify
from corpus.schema import check_columns, check_messages, split_path
from potion.cli import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mix_sample"
ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, src: Path, **extra) -> Path:
    data = {
        "name": "fixture",
        "sources": [{"kind": "dir", "path": str(src), "name": "sample"}],
        "split": {"validation_projects": ["tiny_dep"], "validation_fraction": 0.0},
        "decontaminate": {"suites": False},
        "cache": str(tmp_path / "cache"),
        "workers": 1,
        **extra,
    }
    path = tmp_path / "corpus.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _build_cli(tmp_path: Path, project: Path, out: Path, *extra: str) -> int:
    config = str(_config(tmp_path, project))
    return main(["corpus", "build", "--config", config, "--out", str(out), "--no-progress", *extra])


def _rows(out: Path, stage: str, split: str) -> list[dict]:
    return pq.read_table(split_path(out, stage, split)).to_pylist()


def _comparable(manifest: dict) -> dict:
    return {k: v for k, v in manifest.items() if k not in ("created", "wall_s")}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    src = tmp_path / "project"
    shutil.copytree(FIXTURE, src)
    return src


def test_fixture_corpus_end_to_end(tmp_path, project, capsys):
    # planted: a near-duplicate of a module, an exact copy, a binary file with a .ex name
    counter = (project / "lib/sample/counter.ex").read_text()
    (project / "lib/sample/counter_copy.ex").write_text(counter.replace("running total", "running sum"))
    (project / "lib/sample/exact_copy.ex").write_text(counter.replace("\n", "\n\n"))
    (project / "lib/sample/blob.ex").write_bytes(b"\x00\x01\x02" * 100)
    out = tmp_path / "out"
    assert _build_cli(tmp_path, project, out) == 0
    m = read_manifest(out)
    c = m["counts"]
    assert c["license_excluded"] == 2 and m["licenses_excluded"] == {
        "GPL-3.0-only": 2
    }  # its lib/ and mix.exs
    assert c["dropped"] == {"binary": 1}
    assert c["exact_duplicates"] == 1 and c["near_duplicates"] == 1
    assert m["licenses"] == {"BSD-3-Clause": 2, "MIT": 8}
    assert m["secrets"] == {"aws_key": 1, "email": 1, "ip_address": 1}
    assert verify(out) == []

    train, val = _rows(out, "stage1", "train"), _rows(out, "stage1", "validation")
    assert [r["path"] for r in val] == ["deps/tiny_dep/lib/tiny_dep.ex", "deps/tiny_dep/mix.exs"]
    assert val[0]["license"] == "BSD-3-Clause" and val[0]["project"] == "dir:sample/tiny_dep"
    assert {r["project"] for r in train} == {"dir:sample"}
    text = "\n".join(r["text"] for r in train)
    assert "AKIAIOSFODNN7EXAMPLE" not in text and "maintainer.person" not in text and "<AWS_KEY>" in text
    assert "GplDep" not in text
    for r in train:
        assert len(r["sha"]) == 64 and r["source"] == "dir:sample"

    samples = _rows(out, "stage2", "train") + _rows(out, "stage2", "validation")
    check_columns(samples[0].keys(), "stage2")
    for s in samples:
        check_messages(s["messages"])
    tasks = {s["task"] for s in samples}
    assert tasks == {"doc_to_impl", "impl_to_doc", "doctest_to_fn", "behaviour_to_module", "explain"}
    genserver = [
        s
        for s in samples
        if s["task"] == "behaviour_to_module" and "GenServer" in s["messages"][1]["content"]
    ]
    assert genserver and "handle_call" in genserver[0]["messages"][2]["content"]
    assert m["stage2"]["tasks"] == {t: sum(1 for s in samples if s["task"] == t) for t in tasks}
    assert not work_dir(out.resolve()).exists()  # the work state is removed after success

    capsys.readouterr()
    assert main(["corpus", "stats", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "counts per stage" in shown and "GPL-3.0-only" in shown and "match their sha256" in shown
    with pytest.raises(OutputExists):
        build(load_config(tmp_path / "corpus.yaml"), out, progress=False, log=lambda s: None)


def test_two_workers_give_the_same_corpus(tmp_path, project):
    cfg = load_config(_config(tmp_path, project))
    one = build(cfg, tmp_path / "one", workers=1, progress=False, log=lambda s: None)
    two = build(cfg, tmp_path / "two", workers=2, progress=False, log=lambda s: None)
    assert _comparable(one) == _comparable(two)


def test_decontamination_per_benchmark(tmp_path, project):
    bench = tmp_path / "elixir_tasks.jsonl"
    bench.write_text(
        json.dumps(
            {
                "name": "factorial",
                "prompt": "Write factorial.",
                "tests": "assert Sample.Math.factorial(5) == 120",
                "canonical_solution": (
                    "def factorial(n) when is_integer(n) and n > 0, do: n * factorial(n - 1)"
                ),
            }
        )
        + "\n"
    )
    other = tmp_path / "other.jsonl"
    other.write_text(
        json.dumps({"prompt": "unrelated words that appear nowhere in the corpus at all"}) + "\n"
    )
    out = tmp_path / "out"
    code = _build_cli(tmp_path, project, out, "--decontaminate", str(bench), "--decontaminate", str(other))
    assert code == 0
    m = read_manifest(out)
    assert m["decontamination"]["elixir_tasks"]["stage1_files"] == 1
    assert m["decontamination"]["other"] == {
        "path": str(other),
        "rows": 1,
        "stage1_files": 0,
        "stage2_samples": 0,
    }
    paths = [r["path"] for r in _rows(out, "stage1", "train")]
    assert "lib/sample/math.ex" not in paths and m["counts"]["decontaminated"] == 1


def test_bad_inputs_fail_clearly_and_write_nothing(tmp_path, project, capsys):
    cfg = _config(tmp_path, project)
    assert (
        main(["corpus", "build", "--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")]) == 1
    )
    assert "does not exist" in capsys.readouterr().err
    assert (
        main(["corpus", "build", "--config", str(cfg), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    )
    assert "--workers" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config({"sources": [{"kind": "dir", "path": "."}], "dedupe": {}})
    with pytest.raises(ConfigError, match="source kind"):
        parse_config({"sources": [{"kind": "ftp"}]})
    bad = yaml.safe_load(cfg.read_text())
    bad["sources"][0]["path"] = str(tmp_path / "missing")
    cfg.write_text(yaml.safe_dump(bad))
    assert main(["corpus", "build", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert main(["corpus", "stats", str(tmp_path)]) == 1


def test_configs_parse():
    for path in sorted((ROOT / "configs" / "corpus").glob("*.yaml")):
        cfg = load_config(path)
        assert (
            cfg.sources
            and cfg.dedup.num_perm == 256
            and cfg.dedup.shingle == 5
            and cfg.dedup.threshold == 0.7
        )


def _many_files(root: Path, n: int) -> None:
    shutil.copytree(FIXTURE, root)
    for i in range(n):
        body = "".join(
            f'  @doc "Returns {i} plus {j}, a generated helper number {j}."\n'
            f"  def f{j}(x), do: x + {i * 31 + j}\n"
            for j in range(i % 7 + 2)
        )
        (root / "lib" / f"gen_{i:03d}.ex").write_text(
            f'defmodule Gen{i} do\n  @moduledoc "Gen {i}."\n{body}end\n'
        )


@pytest.mark.slow
def test_sigkill_mid_build_then_resume_equals_uninterrupted(tmp_path):
    src = tmp_path / "many"
    _many_files(src, 240)
    cfg_path = _config(tmp_path, src)
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "potion.cli",
            "corpus",
            "build",
            "--config",
            str(cfg_path),
            "--out",
            str(out),
            "--no-progress",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    db = work_dir(out.resolve()) / "state.sqlite"
    done = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
                    done = con.execute("SELECT COUNT(*) FROM files WHERE status IS NOT NULL").fetchone()[0]
            except sqlite3.Error:
                done = 0
            if done >= 60:
                break
        time.sleep(0.01)  # polling a condition (no fixed wait): the build's own progress decides
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert done >= 60, proc.stderr.read().decode()[-2000:]
    assert not out.exists()  # killed: nothing under the final name

    logs: list[str] = []
    resumed = build(load_config(cfg_path), out, progress=False, log=logs.append)
    assert any("resuming" in line for line in logs)
    fresh = build(load_config(cfg_path), tmp_path / "fresh", progress=False, log=lambda s: None)
    assert _comparable(resumed) == _comparable(fresh)
    assert resumed["counts"]["stage1"]["train"] >= 240


def test_eval_suites_are_decontaminated_by_default(tmp_path, project, monkeypatch):
    import corpus.build

    suites = tmp_path / "repo" / "evals" / "suites"
    suites.mkdir(parents=True)
    task = {
        "name": "stack_pop",
        "prompt": "defmodule Stack do",
        "tests": "assert true",
        "canonical_solution": (
            "Agent.get_and_update(stack, fn\n      [] -> {:empty, []}\n"
            "      [top | rest] -> {{:ok, top}, rest}\n    end)"
        ),
    }
    (suites / "elixir_tasks.jsonl").write_text(json.dumps(task) + "\n")
    monkeypatch.setattr(corpus.build, "repo_root", lambda: tmp_path / "repo")
    cfg = yaml.safe_load(_config(tmp_path, project).read_text())
    cfg["decontaminate"] = {"suites": True}
    manifest = build(parse_config(cfg), tmp_path / "out", progress=False, log=lambda s: None)
    report = manifest["decontamination"]["elixir_tasks"]
    assert report["rows"] == 1 and report["stage1_files"] == 1  # lib/sample/stack.ex
    paths = [r["path"] for r in _rows(tmp_path / "out", "stage1", "train")]
    assert "lib/sample/stack.ex" not in paths and "lib/sample/math.ex" in paths


def test_git_checkout_records_its_commit(tmp_path, project):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "fixture"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    manifest = build(
        load_config(_config(tmp_path, project)), tmp_path / "out", progress=False, log=lambda s: None
    )
    assert manifest["sources"][0]["version"] == head
    rows = _rows(tmp_path / "out", "stage1", "train")
    assert not any(r["path"].startswith(".git/") for r in rows)
