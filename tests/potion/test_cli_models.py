"""`potion models ...` through potion.cli.main: output, exit codes, one-line errors."""

from __future__ import annotations

import json
import socket

import pytest

from potion import registry
from potion.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_without_action_prints_help(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0 and "list" in out and "pull" in out and "verify" in out and "path" in out


def test_list_pull_path_verify(fake_registry_model, capsys):
    code, out, _ = run(capsys, "models", "list")
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("fake-model"))
    assert "not assembled" in line and "fake-chunk-part1" in line
    assert "potion models pull fake-model" in out

    code, out, err = run(capsys, "models", "path", "fake-model", "--no-pull")
    assert code == 1 and out == ""
    assert err.strip() == (
        "potion: error: model fake-model is not assembled yet (run `potion models pull fake-model`)"
    )

    code, out, _ = run(capsys, "models", "pull", "fake-model", "--no-progress")
    path = registry.cached_path(fake_registry_model)
    assert (
        code == 0
        and out == f"{path}\n"
        and path.read_bytes() == b"".join(c.read_bytes() for c in registry.chunk_paths(fake_registry_model))
    )

    code, out, err = run(capsys, "models", "path", "fake-model")
    assert (code, out, err) == (0, f"{path}\n", "")

    code, out, _ = run(capsys, "models", "list", "--json")
    rows = {r["name"]: r for r in map(json.loads, out.splitlines())}
    assert rows["fake-model"]["state"] == "ready" and rows["fake-model"]["path"] == str(path)
    assert rows[registry.DEFAULT_MODEL]["default"] is True

    code, out, _ = run(capsys, "models", "verify", "fake-model")
    assert code == 0 and out == f"ok {path}\n"


def test_path_assembles_silently_for_scripts(fake_registry_model, capsys):
    code, out, err = run(capsys, "models", "path", "fake-model")
    assert code == 0 and out == f"{registry.cached_path(fake_registry_model)}\n" and err == ""


def test_verify_reports_corruption(fake_registry_model, capsys):
    path = registry.pull("fake-model", progress=False)
    path.write_bytes(b"x" * fake_registry_model.size)
    code, out, err = run(capsys, "models", "verify", "fake-model")
    assert code == 1 and out == ""
    last = err.splitlines()[-1]  # above it: the verification's progress bar
    assert last.startswith("potion: error: ") and "has sha256" in last and "models pull fake-model" in last


def test_verify_not_assembled(fake_registry_model, capsys):
    code, _, err = run(capsys, "models", "verify", "fake-model")
    assert code == 1 and "not assembled yet" in err


def test_unknown_and_missing_models(potion_home, capsys):
    code, out, err = run(capsys, "models", "path", "nope")
    assert code == 1 and out == "" and "no model named 'nope'" in err and err.count("\n") == 1
    if registry._missing_dists(registry.MODELS["qwen2.5-coder-1.5b"]):
        code, _, err = run(capsys, "models", "pull", "qwen2.5-coder-1.5b")
        assert code == 1 and "pip install 'potion[model-1_5b]'" in err


def test_list_shows_missing_wheels(potion_home, capsys):
    if not registry._missing_dists(registry.MODELS["qwen2.5-coder-1.5b"]):
        pytest.skip("the model-1_5b extra is installed here")
    code, out, _ = run(capsys, "models", "list")
    assert code == 0
    assert "wheels missing" in next(x for x in out.splitlines() if x.startswith("qwen2.5-coder-1.5b"))
    assert "pip install 'potion[model-1_5b]'" in out


def test_pull_local_file_checks_it(make_gguf, potion_home, capsys, tmp_path):
    path = make_gguf(tensors=[("w", [32], 0)])
    code, out, _ = run(capsys, "models", "pull", str(path))
    assert code == 0 and out == f"{path.resolve()}\n"
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(path.read_bytes()[:40])
    code, _, err = run(capsys, "models", "path", str(broken))
    assert code == 1 and "truncated" in err


def test_hf_pull_offline(potion_home, tmp_path, monkeypatch, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    code, out, err = run(capsys, "models", "pull", "hf:o/r/m.gguf", "--no-progress")
    assert code == 1 and out == ""
    assert err.strip() == (
        f"potion: error: cannot reach the Hugging Face hub at http://127.0.0.1:{port} to fetch hf:o/r/m.gguf "
        "(download the file and pass its path, or set HF_ENDPOINT)"
    )
