"""`potion doctor`: each probe on its own, and the table and exit code through potion.cli.main."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from potion import registry
from potion.cli import main
from potion.commands import doctor


def completed(returncode: int, stdout: str = "", stderr: str = "") -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess([], returncode, stdout, stderr)


def test_llama_cpp_probe_outcomes(monkeypatch):
    monkeypatch.setattr(doctor.subprocess, "run", lambda *a, **k: completed(0, "0.3.36"))
    assert doctor.check_llama_cpp() == doctor.Check("llama-cpp-python", True, "0.3.36")

    monkeypatch.setattr(doctor.subprocess, "run", lambda *a, **k: completed(-4))
    check = doctor.check_llama_cpp()
    assert not check.ok and check.essential and "crashed with SIGILL" in check.detail
    assert "CMAKE_ARGS" in check.hint

    err = "Traceback (most recent call last):\n  ...\nModuleNotFoundError: No module named 'llama_cpp'\n"
    monkeypatch.setattr(doctor.subprocess, "run", lambda *a, **k: completed(1, stderr=err))
    check = doctor.check_llama_cpp()
    assert not check.ok and check.detail == "ModuleNotFoundError: No module named 'llama_cpp'"


def test_llama_cpp_probe_runs_in_a_child_process():
    check = doctor.check_llama_cpp()
    try:
        import llama_cpp
    except ImportError:
        assert not check.ok
    else:
        assert check.ok and check.detail == llama_cpp.__version__


def write_exe(folder: Path, name: str, script: str) -> None:
    exe = folder / name
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(0o755)


def test_elixir_probe(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    check = doctor.check_elixir()
    assert not check.ok and not check.essential and "not found on PATH" in check.detail

    write_exe(
        bin_dir,
        "elixir",
        "echo 'Erlang/OTP 25 [erts-13.1.5] [64-bit]'; echo; echo 'Elixir 1.14.0 (compiled)'\n",
    )
    check = doctor.check_elixir()
    assert check.ok and check.detail.startswith("1.14.0 (OTP 25) at ")

    write_exe(bin_dir, "elixir", "echo 'boom' >&2; exit 3\n")
    check = doctor.check_elixir()
    assert not check.ok and "--version failed" in check.detail


def test_missing_package():
    check = doctor.check_package("surely-not-installed-potion-dep")
    assert not check.ok and check.detail == "not installed"


def test_model_check_uses_the_sidecar(fake_registry_model, monkeypatch):
    assert not doctor.check_model("fake-model").ok
    registry.pull("fake-model", progress=False)

    def no_hashing(*_a, **_k):
        raise AssertionError("doctor re-hashed a model whose sidecar is valid")

    monkeypatch.setattr(registry, "sha256_file", no_hashing)
    check = doctor.check_model("fake-model")
    assert check.ok and str(registry.cached_path(fake_registry_model)) in check.detail


def test_model_check_failure_has_the_fix(fake_registry_model):
    check = doctor.check_model("fake-model")
    assert not check.ok and check.essential
    assert check.detail == "model fake-model is not assembled yet"
    assert check.hint == "run `potion models pull fake-model`"


def healthy(monkeypatch) -> None:
    """Stub the slow or environment-dependent probes; the model check stays real."""
    monkeypatch.setattr(doctor, "check_llama_cpp", lambda: doctor.Check("llama-cpp-python", True, "0.3.36"))
    monkeypatch.setattr(
        doctor, "check_elixir", lambda: doctor.Check("elixir", True, "1.14.0", essential=False)
    )


def test_doctor_ok_exits_zero(fake_registry_model, monkeypatch, capsys):
    healthy(monkeypatch)
    registry.pull("fake-model", progress=False)
    assert main(["doctor", "--model", "fake-model"]) == 0
    out = capsys.readouterr().out
    assert "✗" not in out and "Potion is ready." in out
    for name in (
        "python",
        "llama-cpp-python",
        "model fake-model",
        "elixir",
        "pygls",
        "textual",
        "tree-sitter",
    ):
        assert any(line.startswith("✓") and name in line for line in out.splitlines()), name


def test_doctor_missing_model_exits_one(fake_registry_model, monkeypatch, capsys):
    healthy(monkeypatch)
    assert main(["doctor", "--model", "fake-model"]) == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "model fake-model" in x)
    assert line.startswith("✗") and "potion models pull fake-model" in line
    assert "1 essential check(s) failed: model fake-model" in out


def test_doctor_missing_elixir_is_only_a_warning(fake_registry_model, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(doctor, "check_llama_cpp", lambda: doctor.Check("llama-cpp-python", True, "0.3.36"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no elixir here
    registry.pull("fake-model", progress=False)
    assert main(["doctor", "--model", "fake-model"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.split()[1:2] == ["elixir"])
    assert line.startswith("!") and "install Elixir" in line


def test_doctor_hints_keep_their_brackets(potion_home, monkeypatch, capsys):
    monkeypatch.setattr(
        doctor,
        "check_llama_cpp",
        lambda: doctor.Check("llama-cpp-python", False, "missing", hint="pip install 'potion[llama]'"),
    )
    monkeypatch.setattr(
        doctor, "check_elixir", lambda: doctor.Check("elixir", True, "1.14.0", essential=False)
    )
    assert main(["doctor", "--model", os.devnull]) == 1
    out = capsys.readouterr().out
    assert "pip install 'potion[llama]'" in out  # rich would eat [llama] as markup if not escaped
