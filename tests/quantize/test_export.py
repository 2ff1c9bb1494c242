"""`potion export` on a tiny adapter: what it writes and registers, and its bad input: a base whose hash
changed, an unsupported architecture, too little disk, an existing name, a kill midway and a re-run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import default_gguf, make_adapter

from potion import exported, registry
from potion.cli import main
from potion.errors import ModelNotFound
from quantize import export as export_mod
from quantize.adapters import SUPPORTED_ARCHITECTURES
from quantize.errors import (
    AdapterMismatch,
    ConversionFailed,
    ExportError,
    NotEnoughDisk,
    UnsupportedArchitecture,
)
from quantize.export import ExportOptions, check_tokenizer, export_adapter

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def qwen_adapter(session_env, tmp_path_factory) -> tuple[Path, Path]:
    return make_adapter("qwen2", tmp_path_factory.mktemp("qwen-adapter"))


def copy_adapter(adapter_dir: Path, dest: Path, **base_changes) -> Path:
    shutil.copytree(adapter_dir, dest)
    sidecar = json.loads((dest / "potion_adapter.json").read_text())
    sidecar["base"].update(base_changes)
    (dest / "potion_adapter.json").write_text(json.dumps(sidecar))
    return dest


def published(folder: Path) -> dict[str, str]:
    """Every file under a final name in an export folder, checked against its sidecar."""
    out = {}
    for path in folder.glob("*.gguf"):
        digest = exported.verified_sha256(path)
        assert digest == exported.sha256_of(path), f"{path.name} is under its final name but not complete"
        out[path.name] = digest
    return out


def test_the_sidecar_records_hashes_sizes_and_the_converter(tiny_exports):
    tiny = tiny_exports["qwen2"]
    record = json.loads((tiny.export.folder / "export.json").read_text())
    assert record["adapter"]["id"] == "tiny-qwen2-run"
    assert (
        record["base"]["sha256"]
        == json.loads((tiny.adapter_dir / "potion_adapter.json").read_text())["base"]["sha256"]
    )
    assert (
        record["converter"]["sdist_sha256"]
        == "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
    )
    assert len(record["converter"]["script_sha256"]) == 64
    assert record["quant_types"] == ["f16", "q8_0"] and record["architecture"] == "Qwen2ForCausalLM"
    for kind, entry in record["files"].items():
        path = tiny.export.folder / entry["file"]
        assert path.stat().st_size == entry["size"] and exported.sha256_of(path) == entry["sha256"], kind
    assert set(record["files"]) == {"f32", "f16", "q8_0", "lora"}
    # The merged checkpoint: safetensors, tokenizer and chat template.
    hf = tiny.export.folder / "hf"
    assert list(hf.glob("*.safetensors")) and (hf / "tokenizer.json").is_file()
    assert (
        "chat_template" in (hf / "tokenizer_config.json").read_text()
        or (hf / "chat_template.jinja").is_file()
    )


def test_exports_are_listed_and_resolved_by_name(tiny_exports, capsys):
    tiny = tiny_exports["qwen2"]
    assert registry.resolve("tiny-qwen2") == tiny.export.file("f16").path  # the first --quant type
    assert registry.resolve("tiny-qwen2:q8_0") == tiny.export.file("q8_0").path
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "tiny-qwen2:q8_0" in out and "tiny-qwen2:f32" in out and "tiny-qwen2:lora" in out
    resolved = registry.resolve_model(f"{tiny.base_gguf} + tiny-qwen2")
    assert resolved.adapter == tiny.export.file("lora").path


def test_a_tokenizer_that_is_not_the_base_ggufs_is_refused(tiny_exports):
    qwen, mistral = tiny_exports["qwen2"], tiny_exports["mistral"]
    assert qwen.export.record["base"]["spec"] == str(default_gguf())  # checked during its export
    check_tokenizer(qwen.export.file("f32").path, default_gguf())
    with pytest.raises(ConversionFailed, match="tokenizer differs from .*tokenizer.ggml.pre"):
        check_tokenizer(mistral.export.file("f32").path, default_gguf())


def test_a_base_whose_weights_changed_is_refused(qwen_adapter, session_env, tmp_path):
    _base, adapter_dir = qwen_adapter
    bad = copy_adapter(adapter_dir, tmp_path / "adapter", sha256="0" * 64)
    with pytest.raises(AdapterMismatch) as info:
        export_adapter(str(bad), ExportOptions(name="mismatch", progress=False))
    assert "was trained on base weights 000000000000" in info.value.user_message()
    assert "retrain the adapter" in info.value.user_message()
    assert not (exported.exports_dir() / "mismatch").exists()


def test_an_unsupported_architecture_names_the_supported_ones(qwen_adapter, session_env, tmp_path):
    base, adapter_dir = qwen_adapter
    other = tmp_path / "gpt2-base"
    shutil.copytree(base, other)
    config = json.loads((other / "config.json").read_text())
    config["architectures"] = ["GPT2LMHeadModel"]
    (other / "config.json").write_text(json.dumps(config))
    bad = copy_adapter(adapter_dir, tmp_path / "adapter", hf_dir=str(other), architecture="")
    with pytest.raises(UnsupportedArchitecture) as info:
        export_adapter(str(bad), ExportOptions(name="gpt2", progress=False))
    for arch in ("GPT2LMHeadModel", *SUPPORTED_ARCHITECTURES):
        assert arch in info.value.message


def test_not_enough_disk_is_found_before_writing(qwen_adapter, converters, monkeypatch):
    _base, adapter_dir = qwen_adapter
    monkeypatch.setattr(export_mod, "free_bytes", lambda _folder: 1_000_000)
    with pytest.raises(NotEnoughDisk, match=r"needs about \d+ MB .* 1 MB free"):
        export_adapter(str(adapter_dir), ExportOptions(name="nodisk", progress=False), converters=converters)
    folder = exported.exports_dir() / "nodisk"
    assert not (folder / "hf").exists() and not list(folder.glob("*.gguf"))


def test_kill_midway_leaves_no_final_file_and_a_rerun_finishes(qwen_adapter, converters, session_env):
    _base, adapter_dir = qwen_adapter
    folder = exported.exports_dir() / "killed"
    cmd = [str(Path(sys.executable).parent / "potion"), "export", str(adapter_dir), "--name", "killed"]
    cmd += ["--outtype", "f32", "--quant", "q8_0", "--no-progress"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    partial = folder / ".killed-f32.gguf.partial"
    deadline = time.monotonic() + 240
    while not (partial.exists() and partial.stat().st_size > 0) and proc.poll() is None:
        assert time.monotonic() < deadline, "the converter never started writing"
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()
    os.killpg(proc.pid, signal.SIGKILL)  # the export and its converter subprocess, mid-write
    proc.wait()
    proc.stderr.close()
    assert not (folder / "export.json").exists()
    assert published(folder) == {}  # the converted file never reached its final name
    with pytest.raises(ModelNotFound):
        registry.resolve("killed")
    merged = (folder / "hf" / "config.json").stat().st_mtime_ns

    export = export_adapter(
        str(adapter_dir),
        ExportOptions(name="killed", quants=("q8_0",), outtype="f32", progress=False),
        converters=converters,
    )
    assert (folder / "hf" / "config.json").stat().st_mtime_ns == merged  # the merge was not redone
    assert set(published(folder)) == {"killed-f32.gguf", "killed-q8_0.gguf", "killed-lora.gguf"}
    assert not list(folder.glob(".*.partial"))
    assert registry.resolve("killed") == export.file("q8_0").path

    with pytest.raises(ExportError, match="exists already"):
        export_adapter(str(adapter_dir), ExportOptions(name="killed", progress=False), converters=converters)


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--quant", "q3_k"], "--quant"),
        (["--name", "Bad Name"], "--name"),
        (["--quant", "q8_0,q8_0"], "--quant"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(argv, flag, capsys, tmp_path):
    assert main(["export", str(tmp_path), *argv]) == 2
    assert flag in capsys.readouterr().err


def test_an_unknown_adapter_says_what_is_accepted(session_env, capsys, tmp_path):
    assert main(["export", str(tmp_path / "nope")]) == 1
    assert "run directory" in capsys.readouterr().err


def test_without_an_argument_the_promoted_adapter_is_exported_and_made_the_default(
    qwen_adapter, session_env, tmp_path, monkeypatch, capsys
):
    from potion import versions
    from trainer import adapters

    monkeypatch.setenv("POTION_HOME", str(tmp_path / "home"))  # its own adapter registry and `stable`
    assert main(["export", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "no adapter given and no adapter is promoted" in err and "potion adapters promote" in err
    record = adapters.register(qwen_adapter[1])
    adapters.promote(record.id)
    before = versions.stable()
    assert main(["export", "--name", "promoted", "--quant", "q8_0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "default model (stable) is now promoted: its adapter is the promoted one" in out
    assert versions.stable() == "promoted"
    assert registry.resolve() == exported.load("promoted").file("q8_0").path
    adapters.rollback()
    assert versions.stable() == before


def test_lora_is_never_merged_into_quantized_weights(tmp_path):
    from quantize.merge import base_dtype

    config = {"architectures": ["Qwen2ForCausalLM"], "torch_dtype": "bfloat16"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert base_dtype(tmp_path) == "bfloat16"
    # A base the trainer rebuilt from a GGUF keeps transformers' marker, but its weights are dequantized.
    (tmp_path / "config.json").write_text(
        json.dumps({**config, "quantization_config": {"quant_method": "gguf"}})
    )
    assert base_dtype(tmp_path) == "bfloat16"
    nf4 = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (tmp_path / "config.json").write_text(json.dumps({**config, "quantization_config": nf4}))
    with pytest.raises(ExportError, match="never merged into quantized weights"):
        base_dtype(tmp_path)


def test_a_relative_run_directory_is_found_as_an_absolute_one(qwen_adapter, monkeypatch):
    """The converters run in their own working directory: an adapter given as `runs/NAME` must reach them
    as an absolute path (a relative one made convert_lora_to_gguf.py look for adapter_model.bin)."""
    from quantize.adapters import find_adapter

    _base, adapter_dir = qwen_adapter
    monkeypatch.chdir(adapter_dir.parent)
    found = find_adapter(adapter_dir.name)
    assert found.dir.is_absolute() and found.dir == adapter_dir.resolve()
