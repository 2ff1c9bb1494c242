"""Read a GGUF file's header and metadata without loading its tensors.

Pure Python over `mmap`: only the pages of the header are touched, so reading the vocabulary of a
500 MB model costs a few milliseconds of I/O. The editor path uses this to pick a FIM template
(`tokenizer.ggml.tokens`), the context size (`<arch>.context_length`) and the chat template before
llama.cpp loads anything, and the registry uses `check_gguf` to refuse a broken file with a one-line
error instead of letting llama.cpp fail (or crash) on it.

Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
"""

from __future__ import annotations

import mmap
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from potion.errors import ModelCorrupt, ModelNotFound

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
# Real models have a few hundred tensors and a few dozen keys; far larger counts mean a damaged header.
MAX_TENSORS = 1 << 20
MAX_KV = 1 << 16
MAX_DIMS = 8

# Metadata value types.
_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _FLOAT32, _BOOL = range(8)
_STRING, _ARRAY, _UINT64, _INT64, _FLOAT64 = 8, 9, 10, 11, 12
_SCALARS: dict[int, str] = {
    _UINT8: "B",
    _INT8: "b",
    _UINT16: "H",
    _INT16: "h",
    _UINT32: "I",
    _INT32: "i",
    _FLOAT32: "f",
    _BOOL: "?",
    _UINT64: "Q",
    _INT64: "q",
    _FLOAT64: "d",
}

# ggml tensor types: (elements per block, bytes per block). Used to check that the tensor data the
# header promises is really in the file; a type missing here only skips that one size check.
GGML_BLOCKS: dict[int, tuple[int, int]] = {
    0: (1, 4),  # F32
    1: (1, 2),  # F16
    2: (32, 18),  # Q4_0
    3: (32, 20),  # Q4_1
    6: (32, 22),  # Q5_0
    7: (32, 24),  # Q5_1
    8: (32, 34),  # Q8_0
    9: (32, 36),  # Q8_1
    10: (256, 84),  # Q2_K
    11: (256, 110),  # Q3_K
    12: (256, 144),  # Q4_K
    13: (256, 176),  # Q5_K
    14: (256, 210),  # Q6_K
    15: (256, 292),  # Q8_K
    16: (256, 66),  # IQ2_XXS
    17: (256, 74),  # IQ2_XS
    18: (256, 98),  # IQ3_XXS
    19: (256, 50),  # IQ1_S
    20: (32, 18),  # IQ4_NL
    21: (256, 110),  # IQ3_S
    22: (256, 82),  # IQ2_S
    23: (256, 136),  # IQ4_XS
    24: (1, 1),  # I8
    25: (1, 2),  # I16
    26: (1, 4),  # I32
    27: (1, 8),  # I64
    28: (1, 8),  # F64
    29: (256, 56),  # IQ1_M
    30: (1, 2),  # BF16
    34: (256, 54),  # TQ1_0
    35: (256, 66),  # TQ2_0
    39: (32, 17),  # MXFP4
}


@dataclass(frozen=True)
class GGUFHeader:
    """What `check_gguf` learned about a file."""

    path: Path
    version: int
    tensor_count: int
    kv_count: int
    size: int  # file size in bytes
    data_end: int  # where the last tensor's data ends (<= size for a complete file)


class _Truncated(Exception):
    """The header runs past the end of the file."""


class _Damaged(Exception):
    """The header is not what the format allows (bad count, type or length)."""


class _Reader:
    """A cursor over the mapped file with the file's byte order."""

    def __init__(self, buf: mmap.mmap, order: str) -> None:
        self.buf = buf
        self.order = order
        self.pos = 0
        self.size = len(buf)

    def _need(self, n: int) -> None:
        if self.pos + n > self.size:
            raise _Truncated

    def scalar(self, code: str) -> Any:
        n = struct.calcsize(code)
        self._need(n)
        (value,) = struct.unpack_from(self.order + code, self.buf, self.pos)
        self.pos += n
        return value

    def string(self, skip: bool = False) -> str | None:
        n = self.scalar("Q")
        self._need(n)
        start, self.pos = self.pos, self.pos + n
        if skip:
            return None
        # Tokens of byte-level vocabularies are not always valid UTF-8 on their own.
        return bytes(self.buf[start : self.pos]).decode("utf-8", errors="replace")

    def value(self, vtype: int, skip: bool = False) -> Any:
        if vtype in _SCALARS:
            value = self.scalar(_SCALARS[vtype])
            return None if skip else value
        if vtype == _STRING:
            return self.string(skip)
        if vtype == _ARRAY:
            itype, count = self.scalar("I"), self.scalar("Q")
            if itype in _SCALARS:
                width = struct.calcsize(_SCALARS[itype])
                self._need(count * width)
                if skip:
                    self.pos += count * width
                    return None
                values = struct.unpack_from(f"{self.order}{count}{_SCALARS[itype]}", self.buf, self.pos)
                self.pos += count * width
                return list(values)
            if itype not in (_STRING, _ARRAY):
                raise _Damaged(f"unknown array item type {itype}")
            # Each item takes at least 8 bytes, which bounds a damaged count before we loop on it.
            self._need(count * 8)
            items = [self.value(itype, skip) for _ in range(count)]
            return None if skip else items
        raise _Damaged(f"unknown metadata value type {vtype}")


def _open(path: str | os.PathLike[str]) -> tuple[Path, mmap.mmap]:
    p = Path(path).expanduser()
    if p.is_dir():
        raise ModelNotFound(
            f"{p} is a directory, not a GGUF file", hint="pass the path of the .gguf file in it"
        )
    if not p.exists():
        raise ModelNotFound(f"no such model file: {p}", hint="check the path, or run `potion models list`")
    try:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 24:
                raise ModelCorrupt(
                    f"{p} is not a GGUF model (only {size} bytes)", hint="download the file again"
                )
            return p, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except PermissionError as exc:
        raise ModelNotFound(
            f"cannot read {p}: permission denied", hint="check the file's permissions"
        ) from exc
    except OSError as exc:
        raise ModelNotFound(f"cannot read {p}: {exc.strerror or exc}", hint="check the path") from exc


def _header(p: Path, buf: mmap.mmap) -> tuple[_Reader, int, int, int]:
    if buf[:4] != MAGIC:
        raise ModelCorrupt(
            f"{p} is not a GGUF model (starts with {bytes(buf[:4])!r}, not b'GGUF')",
            hint="llama.cpp needs a .gguf file; convert safetensors with llama.cpp's convert_hf_to_gguf.py",
        )
    # GGUF is little-endian unless written for a big-endian host; the version tells which.
    for order in ("<", ">"):
        (version,) = struct.unpack_from(order + "I", buf, 4)
        if version in SUPPORTED_VERSIONS:
            break
    else:
        (version,) = struct.unpack_from("<I", buf, 4)
        raise ModelCorrupt(
            f"{p} has GGUF version {version}; only versions 2 and 3 are supported",
            hint="re-convert the model with a recent llama.cpp",
        )
    r = _Reader(buf, order)
    r.pos = 8
    tensor_count, kv_count = r.scalar("Q"), r.scalar("Q")
    if tensor_count > MAX_TENSORS or kv_count > MAX_KV:
        raise ModelCorrupt(
            f"{p} has a damaged GGUF header ({tensor_count} tensors, {kv_count} metadata keys)",
            hint="download the file again",
        )
    return r, version, tensor_count, kv_count


def _corrupt(p: Path, exc: Exception) -> ModelCorrupt:
    if isinstance(exc, _Truncated):
        return ModelCorrupt(
            f"{p} is truncated: its GGUF header runs past the end of the file", hint="download the file again"
        )
    return ModelCorrupt(f"{p} has a damaged GGUF header: {exc}", hint="download the file again")


def read_metadata(path: str | os.PathLike[str], *, keys: set[str] | None = None) -> dict[str, Any]:
    """The metadata key/values of a GGUF file (all of them, or only `keys`; absent keys are left out).

    Arrays come back as lists, strings as str. Reading stops as soon as every wanted key is found.
    Raises ModelNotFound (missing, directory, unreadable) or ModelCorrupt (not GGUF, truncated).
    """
    p, buf = _open(path)
    try:
        r, _version, _tensors, kv_count = _header(p, buf)
        wanted = set(keys) if keys is not None else None
        out: dict[str, Any] = {}
        for _ in range(kv_count):
            if wanted is not None and not wanted:
                break
            key = r.string()
            vtype = r.scalar("I")
            take = wanted is None or key in wanted
            value = r.value(vtype, skip=not take)
            if take:
                out[key] = value
                if wanted is not None:
                    wanted.discard(key)
        return out
    except (_Truncated, _Damaged) as exc:
        raise _corrupt(p, exc) from None
    finally:
        buf.close()


def _tensors(r: _Reader, tensor_count: int) -> Iterator[tuple[str, list[int], int, int]]:
    """(name, dims, ggml type, data offset) of each entry of the tensor table, `r` placed at its start."""
    for _ in range(tensor_count):
        name = r.string()
        n_dims = r.scalar("I")
        if n_dims > MAX_DIMS:
            raise _Damaged(f"tensor {name!r} has {n_dims} dimensions")
        dims = [r.scalar("Q") for _ in range(n_dims)]
        yield name or "", dims, r.scalar("I"), r.scalar("Q")


def check_gguf(path: str | os.PathLike[str]) -> GGUFHeader:
    """Check that `path` is a complete, readable GGUF before anything loads it.

    Walks the whole header (metadata and tensor table) and checks that the tensor data it describes
    fits in the file, so a truncated download is caught here with a one-line error.
    """
    p, buf = _open(path)
    try:
        r, version, tensor_count, kv_count = _header(p, buf)
        alignment = DEFAULT_ALIGNMENT
        for _ in range(kv_count):
            key = r.string()
            vtype = r.scalar("I")
            if key == "general.alignment" and vtype in _SCALARS:
                alignment = int(r.value(vtype)) or DEFAULT_ALIGNMENT
            else:
                r.value(vtype, skip=True)
        data_size = 0
        for _name, dims, ttype, offset in _tensors(r, tensor_count):
            count = 1
            for d in dims:
                count *= d
            block = GGML_BLOCKS.get(ttype)
            nbytes = count // block[0] * block[1] if block else 0
            data_size = max(data_size, offset + nbytes)
        data_start = -(-r.pos // alignment) * alignment
        header = GGUFHeader(p, version, tensor_count, kv_count, r.size, data_start + data_size)
    except (_Truncated, _Damaged) as exc:
        raise _corrupt(p, exc) from None
    finally:
        buf.close()
    if header.data_end > header.size:
        raise ModelCorrupt(
            f"{p} is truncated: its tensors need {header.data_end:,} bytes but the file has {header.size:,}",
            hint="download the file again",
        )
    return header


def context_length(path: str | os.PathLike[str]) -> int | None:
    """The model's training context (`<arch>.context_length`), or None when the file does not say."""
    arch = read_metadata(path, keys={"general.architecture"}).get("general.architecture")
    if not arch:
        return None
    value = read_metadata(path, keys={f"{arch}.context_length"}).get(f"{arch}.context_length")
    return int(value) if value is not None else None


# llama.cpp's LLAMA_MAX_LAYERS: a larger block count is a GGML_ASSERT, which aborts the process.
MAX_LAYERS = 512
_BLOCK = re.compile(r"blk\.(\d+)\.")


def check_hparams(path: str | os.PathLike[str]) -> None:
    """Check the model's hyper-parameters against the tensors the file holds, where that is cheap.

    A header can be well-formed and still lie: `<arch>.block_count` set to 1000 on a 24-layer model
    passes `check_gguf` and then aborts llama.cpp (`GGML_ASSERT(n_layer <= LLAMA_MAX_LAYERS)`). Checked:
    the block count is between 1 and 512 and no larger than the layers whose `blk.N.` tensors are present
    (some architectures add layers, none has fewer tensors than blocks), and head counts are not zero.
    Adapters and files without an architecture are left alone. Raises ModelCorrupt naming the key.
    """
    p, buf = _open(path)
    try:
        r, _version, tensor_count, kv_count = _header(p, buf)
        meta: dict[str, Any] = {}
        for _ in range(kv_count):
            key = r.string() or ""
            vtype = r.scalar("I")
            wanted = key in ("general.architecture", "general.type") or key.endswith(
                (".block_count", ".attention.head_count")
            )
            value = r.value(vtype, skip=not wanted)
            if wanted:
                meta[key] = value
        layers = -1
        for name, _dims, _ttype, _offset in _tensors(r, tensor_count):
            if (m := _BLOCK.match(name)) is not None:
                layers = max(layers, int(m.group(1)))
        layers += 1
    except (_Truncated, _Damaged) as exc:
        raise _corrupt(p, exc) from None
    finally:
        buf.close()
    arch = meta.get("general.architecture")
    if not isinstance(arch, str) or meta.get("general.type") == "adapter":
        return
    fix = "the header does not match the weights: download or export the model again"
    blocks = meta.get(f"{arch}.block_count")
    if isinstance(blocks, int) and not isinstance(blocks, bool):
        if not 0 < blocks <= MAX_LAYERS:
            raise ModelCorrupt(
                f"{p} says {arch}.block_count = {blocks}; llama.cpp allows 1 to {MAX_LAYERS}", hint=fix
            )
        if layers and blocks > layers:
            raise ModelCorrupt(
                f"{p} says {arch}.block_count = {blocks} but holds tensors for {layers} layers (blk.0 to "
                f"blk.{layers - 1})",
                hint=fix,
            )
    heads = meta.get(f"{arch}.attention.head_count")
    values = heads if isinstance(heads, list) else [heads] if heads is not None else []
    # Per-layer arrays may hold 0 for layers without attention (hybrid models); all zero is wrong.
    if values and all(v == 0 for v in values):
        raise ModelCorrupt(f"{p} says {arch}.attention.head_count = 0", hint=fix)
