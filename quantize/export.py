"""`potion export`'s work: adapter -> merged checkpoint -> GGUF -> quantized GGUFs + adapter GGUF.

Everything is written under `potion.exported.exports_dir()/NAME/`, each file to a `.partial` name first,
hashed, then published with `os.replace` and given its `.verified.json`; `export.json` (the sidecar that
registers the export) is written last. So a killed export leaves no half-written file under a final
name and no registered model, and a re-run of the same command skips the steps already published
(`.state.json` records what the folder is being built from; a different adapter or options start over).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from potion import exported, registry
from potion.errors import PotionError
from potion.gguf_header import read_metadata
from quantize.adapters import Adapter, check_base, find_adapter
from quantize.converters import VERSION as CONVERTERS_VERSION
from quantize.converters import Converters, fetch_converters, run_converter
from quantize.errors import ConversionFailed, ExportError, NotEnoughDisk
from quantize.gguf_quant import BITS_PER_WEIGHT, quantize_gguf
from quantize.merge import base_dtype, merge_adapter

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

DEFAULT_QUANTS = ("q8_0", "q5_k_m", "q4_k_m")
STATE = ".state.json"
_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


@dataclass
class ExportOptions:
    name: str | None = None
    quants: Sequence[str] = DEFAULT_QUANTS
    outtype: str = "f16"  # what convert_hf_to_gguf.py writes; the quant types are made from it
    force: bool = False
    progress: bool = True


def export_adapter(
    spec: str | None, options: ExportOptions | None = None, *, converters: Converters | None = None
) -> exported.Export:
    """Export the adapter named by `spec` (run dir, adapter dir or id; None: the promoted adapter);
    returns the registered export."""
    opts = options or ExportOptions()
    adapter = find_adapter(spec)
    arch = check_base(adapter)
    name = exported.check_name(opts.name or _slug(adapter.id))
    folder = exported.exports_dir() / name
    with _lock(folder):
        if (folder / exported.EXPORT_SIDECAR).exists():
            if not opts.force:
                raise ExportError(
                    f"an export named {name} exists already ({folder})",
                    hint="pick another --name, or pass --force to replace it",
                )
            (folder / exported.EXPORT_SIDECAR).unlink()  # unregistered first: never half-replaced
            shutil.rmtree(folder)
        state = {
            "adapter": adapter.id,
            "adapter_dir": str(adapter.dir),
            "base_sha256": adapter.base_sha256,
            "outtype": opts.outtype,
            "quants": list(opts.quants),
        }
        _start(folder, state)
        conv = converters or fetch_converters(progress=opts.progress)
        _check_disk(folder, adapter, name, opts)
        files = _build(folder, name, adapter, conv, opts)
        record = {
            "name": name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "architecture": arch,
            "adapter": {"id": adapter.id, "dir": str(adapter.dir), "metrics": adapter.sidecar.get("metrics")},
            "base": {
                "spec": adapter.base_spec,
                "hf_dir": str(adapter.base_dir),
                "sha256": adapter.base_sha256,
                "dtype": base_dtype(adapter.base_dir),
            },
            "converter": {
                "package": "llama-cpp-python",
                "version": CONVERTERS_VERSION,
                "sdist_sha256": conv.sdist_sha256,
                "script_sha256": conv.script_sha256,
            },
            "outtype": opts.outtype,
            "quant_types": list(opts.quants),
            "default": opts.quants[0] if opts.quants else opts.outtype,
            "hf_dir": "hf",
            "files": files,
        }
        tmp = folder / (exported.EXPORT_SIDECAR + ".tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        os.replace(tmp, folder / exported.EXPORT_SIDECAR)
        (folder / STATE).unlink(missing_ok=True)
    export = exported.load(name)
    assert export is not None
    return export


def _build(
    folder: Path, name: str, adapter: Adapter, conv: Converters, opts: ExportOptions
) -> dict[str, Any]:
    say = _Say(opts.progress)
    hf = folder / "hf"
    if not (hf / "config.json").is_file():
        say(f"merging adapter {adapter.id} into {adapter.base_dir.name} at {base_dtype(adapter.base_dir)}")
        merge_adapter(adapter, hf)
    files: dict[str, Any] = {}
    converted = folder / f"{name}-{opts.outtype}.gguf"
    if not _done(converted):
        say(f"converting to GGUF {opts.outtype} with llama.cpp's convert_hf_to_gguf.py")
        with _partial(converted) as tmp:
            args = ["--outfile", tmp, "--outtype", opts.outtype, hf]
            run_converter(conv, conv.hf_to_gguf, args, progress=opts.progress)
            check_tokenizer(tmp, base_gguf(adapter))
    files[opts.outtype] = _entry(converted)
    for qtype in opts.quants:
        if qtype == opts.outtype:
            continue
        target = folder / f"{name}-{qtype}.gguf"
        if not _done(target):
            say(f"quantizing to {qtype.upper()} with llama.cpp")
            with _partial(target) as tmp:
                quantize_gguf(converted, tmp, qtype, progress=opts.progress)
        files[qtype] = _entry(target)
    lora = folder / f"{name}-lora.gguf"
    if not _done(lora):
        say("converting the adapter with llama.cpp's convert_lora_to_gguf.py")
        lora_type = "f32" if opts.outtype == "f32" else "f16"
        with _partial(lora) as tmp:
            # --base only gives the converter the model's config: the merged one has the same shapes and
            # none of a GGUF-rebuilt base's leftover `quantization_config`, which the converter refuses.
            args = ["--outfile", tmp, "--outtype", lora_type, "--base", hf, adapter.dir]
            run_converter(conv, conv.lora_to_gguf, args, progress=opts.progress)
    files[exported.LORA] = _entry(lora)
    return files


def base_gguf(adapter: Adapter) -> Path | None:
    """The GGUF the adapter's base was rebuilt from (a registry name, hf: spec or .gguf path), if any."""
    spec = adapter.base_spec
    if not spec or spec.startswith("tiny:") or Path(spec).expanduser().is_dir():
        return None
    try:
        return registry.resolve(spec, pull=False)
    except PotionError:
        return None  # not a GGUF, or not on this machine: nothing to compare with


def check_tokenizer(converted: Path, original: Path | None) -> None:
    """The converted GGUF must carry the tokenizer of the GGUF its base came from (same vocabulary and
    pre-tokenizer, so the same ids on any text); checked before the file is published."""
    if original is None:
        return
    keys = {"tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.merges"}
    ours, theirs = read_metadata(converted, keys=keys), read_metadata(original, keys=keys)
    differ = sorted(k for k in keys if ours.get(k) != theirs.get(k))
    if differ:
        raise ConversionFailed(
            f"the converted GGUF's tokenizer differs from {original.name}'s ({', '.join(differ)})",
            hint="its HF tokenizer was not rebuilt from that GGUF; retrain on the base potion train caches",
        )


# --- publishing ---------------------------------------------------------------------------------


def _done(path: Path) -> bool:
    return path.is_file() and exported.verified_sha256(path) is not None


@contextlib.contextmanager
def _partial(final: Path) -> Iterator[Path]:
    """A temp path beside `final`; on success it is hashed and renamed to `final`, else removed."""
    tmp = final.with_name(f".{final.name}.partial")
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        if not tmp.is_file():
            raise ExportError(f"nothing was written to {tmp}", hint="see the converter's output above")
        digest = exported.sha256_of(tmp)
        os.replace(tmp, final)
        exported.write_verified(final, digest)
    finally:
        tmp.unlink(missing_ok=True)


def _entry(path: Path) -> dict[str, Any]:
    digest = exported.verified_sha256(path)
    if digest is None:  # published, then the sidecar went missing: hash it again
        digest = exported.sha256_of(path)
        exported.write_verified(path, digest)
    return {"file": path.name, "size": path.stat().st_size, "sha256": digest}


def _start(folder: Path, state: dict[str, Any]) -> None:
    """Resume an unfinished export of the same thing; start over for anything else."""
    try:
        previous = json.loads((folder / STATE).read_text())
    except (OSError, ValueError):
        previous = None
    if previous != state and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(".*.partial"):
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
    (folder / STATE).write_text(json.dumps(state) + "\n")


# --- disk ---------------------------------------------------------------------------------------


def parameter_count(hf_dir: Path) -> int:
    """Parameters of a safetensors checkpoint, read from the files' JSON headers only."""
    total = 0
    for path in sorted(hf_dir.glob("*.safetensors")):
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        for key, info in header.items():
            if key != "__metadata__":
                count = 1
                for d in info["shape"]:
                    count *= d
                total += count
    return total


def needed_bytes(folder: Path, adapter: Adapter, name: str, opts: ExportOptions) -> int:
    """Bytes the steps still to run will write (5% margin), from the base's parameter count."""
    params = parameter_count(adapter.base_dir)
    need = 0
    if not (folder / "hf" / "config.json").is_file():
        need += params * _DTYPE_BYTES[base_dtype(adapter.base_dir)]
    for kind in (opts.outtype, *opts.quants):
        if not _done(folder / f"{name}-{kind}.gguf"):
            need += int(params * BITS_PER_WEIGHT[kind] / 8)
    need += sum(p.stat().st_size for p in adapter.dir.glob("*.safetensors")) * 2
    return int(need * 1.05)


def free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def _check_disk(folder: Path, adapter: Adapter, name: str, opts: ExportOptions) -> None:
    need, free = needed_bytes(folder, adapter, name, opts), free_bytes(folder)
    if need > free:
        raise NotEnoughDisk(
            f"exporting {name} needs about {need / 1e6:,.0f} MB in {folder.parent}, "
            f"{free / 1e6:,.0f} MB free",
            hint="free some space, export fewer --quant types, or set POTION_HOME to a larger disk",
        )


# --- small helpers ------------------------------------------------------------------------------


def _slug(text: str) -> str:
    slug = "".join(c if c.isalnum() or c in "._-" else "-" for c in text.lower()).strip("-.")
    return slug[:64] or "export"


class _Say:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.step = 0

    def __call__(self, text: str) -> None:
        self.step += 1
        if self.enabled:
            from rich.console import Console

            Console(stderr=True).print(f"[bold]export[/] {self.step}. {text}", highlight=False)


@contextlib.contextmanager
def _lock(folder: Path) -> Iterator[None]:
    """One export of a name at a time (a second `potion export` of it waits)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(folder.parent / f".{folder.name}.lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
