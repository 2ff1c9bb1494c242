"""Fixtures of the export tests: tiny random Mistral / Qwen2 models with real tokenizers
(`trainer.tiny`), a random (non-zero) LoRA adapter on each with its `potion_adapter.json`, and their real
export through llama.cpp's converters, made once per session under a private POTION_HOME.

llama.cpp's converters are fetched once into `.cache/llama-cpp-converters` (POTION_CONVERTERS_DIR), so
every test, and the `potion export` subprocesses, share one verified copy.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from potion import exported

REPO = Path(__file__).resolve().parents[2]
ELIXIR_SRC = REPO / ".cache" / "elixir-src"
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ARCHS = ("mistral", "qwen2")


@dataclass(frozen=True)
class TinyExport:
    arch: str
    base_dir: Path
    adapter_dir: Path
    base_gguf: Path  # the base alone, converted at f32: the adapter GGUF is applied on it
    export: exported.Export


@pytest.fixture(scope="session")
def session_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """POTION_HOME for the whole session (exports land in its models folder), shared converters."""
    home = tmp_path_factory.mktemp("potion-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("POTION_CONVERTERS_DIR", str(REPO / ".cache" / "llama-cpp-converters"))
        mp.setenv("POTION_HOME", str(home))
        yield home


@pytest.fixture(scope="session")
def converters(session_env):
    from quantize.converters import fetch_converters

    return fetch_converters(progress=False)


def elixir_text(max_chars: int = 6000) -> str:
    """Held-out-style Elixir source with unicode: Elixir's own String module plus a line of our own."""
    path = ELIXIR_SRC / "lib" / "elixir" / "lib" / "string.ex"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    extra = (
        'defmodule Café do\n  @moduledoc "Ünïcödé — ✓ 日本語 🎉 ∑"\n'
        "  def ok?(x), do: x |> Enum.map(&(&1 * 2))\nend\n"
    )
    return extra + text[:max_chars]


def default_gguf() -> Path:
    from potion import registry

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("POTION_HOME", raising=False)
        return registry.resolve(registry.DEFAULT_MODEL, pull=False)


def make_adapter(arch: str, root: Path) -> tuple[Path, Path]:
    """A tiny base with a random LoRA on every projection, saved like the trainer saves it."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from quantize.adapters import weights_sha256
    from trainer.tiny import make_tiny_model

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("POTION_HOME", raising=False)  # the tokenizer conversion cache is the user's, shared
        base = make_tiny_model(arch, root / "base", seed=1)
        # The tiny Qwen2's tokenizer is the default model's, rebuilt from its GGUF: name that GGUF as the
        # base's source, so the export checks that its GGUF carries the very same tokenizer.
        spec = str(default_gguf()) if arch == "qwen2" else None
    model = AutoModelForCausalLM.from_pretrained(base)
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=LORA_TARGETS, init_lora_weights=False)
    adapter_dir = root / "run" / "adapter"
    get_peft_model(model, lora).save_pretrained(adapter_dir)
    sidecar = {
        "id": f"tiny-{arch}-run",
        "run_dir": str(root / "run"),
        "base": {
            "spec": spec,
            "hf_dir": str(base),
            "sha256": weights_sha256(base),
            "architecture": model.config.architectures[0],
        },
        "metrics": {"eval_loss": 1.0},
        "created": "2026-12-01T00:00:00Z",
    }
    (adapter_dir / "potion_adapter.json").write_text(json.dumps(sidecar))
    return base, adapter_dir


@pytest.fixture(scope="session")
def tiny_exports(session_env, converters, tmp_path_factory) -> dict[str, TinyExport]:
    """Lazily built: `tiny_exports[arch]` exports that arch on first use (f32, f16 and Q8_0)."""
    from quantize.converters import run_converter
    from quantize.export import ExportOptions, export_adapter

    class Lazy(dict):
        def __missing__(self, arch: str) -> TinyExport:
            root = tmp_path_factory.mktemp(f"tiny-{arch}")
            base, adapter_dir = make_adapter(arch, root)
            opts = ExportOptions(name=f"tiny-{arch}", quants=("f16", "q8_0"), outtype="f32", progress=False)
            export = export_adapter(str(adapter_dir.parent), opts, converters=converters)
            base_gguf = root / "base-f32.gguf"
            args = ["--outfile", base_gguf, "--outtype", "f32", base]
            run_converter(converters, converters.hf_to_gguf, args, progress=False)
            self[arch] = TinyExport(arch, base, adapter_dir, base_gguf, export)
            return self[arch]

    return Lazy()
