"""Quantize a GGUF with llama.cpp itself (`llama_cpp.llama_model_quantize`), with a progress bar.

llama.cpp reports each tensor it writes as a log line `[  12/ 291] blk.0.attn_q.weight ...`; a log
callback counts those lines into a rich bar (the quantizer has no progress callback of its own).
"""

from __future__ import annotations

import ctypes
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from quantize.errors import ConversionFailed

# Our names -> llama_ftype. F16/BF16/F32 are "quantizations" llama.cpp also writes (from an f32 file).
FTYPES: dict[str, int] = {
    "f32": 0,
    "f16": 1,
    "q8_0": 7,
    "q4_k_m": 15,
    "q5_k_m": 17,
    "q6_k": 18,
    "bf16": 32,
}
QUANT_TYPES = ("q8_0", "q6_k", "q5_k_m", "q4_k_m")
# Bits per weight, for the disk-space estimate before writing (llama.cpp's own table, rounded up).
BITS_PER_WEIGHT = {
    "f32": 32.0,
    "f16": 16.0,
    "bf16": 16.0,
    "q8_0": 8.5,
    "q6_k": 6.6,
    "q5_k_m": 5.7,
    "q4_k_m": 4.9,
}
_TENSOR_LINE = re.compile(rb"\[\s*(\d+)/\s*(\d+)\]")

_log_lock = threading.Lock()
_on_line: Callable[[bytes], None] | None = None
_callback: Any = None  # the ctypes callback must outlive every call llama.cpp makes to it


def _log(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
    handler = _on_line
    if handler is not None and text:
        handler(text)


def quantize_gguf(
    src: Path, dst: Path, qtype: str, *, threads: int | None = None, progress: bool = True
) -> None:
    """Write `src` quantized to `qtype` at `dst` (the caller renames it into place once hashed)."""
    global _callback, _on_line
    import llama_cpp

    if qtype not in FTYPES:
        raise ConversionFailed(f"unknown quantization {qtype!r}", hint=f"use one of {', '.join(FTYPES)}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[qtype]
    params.nthread = threads or 0  # 0: llama.cpp uses every core
    errors: list[str] = []
    with _log_lock, _progress(f"quantizing to {qtype.upper()}", progress) as advance:

        def on_line(text: bytes) -> None:
            m = _TENSOR_LINE.search(text)
            if m:
                advance(int(m.group(1)), int(m.group(2)))
            elif b"error" in text.lower() or b"failed" in text.lower():
                errors.append(text.decode("utf-8", "replace").strip())

        if _callback is None:
            _callback = llama_cpp.llama_log_callback(_log)
        _on_line = on_line
        llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))
        try:
            rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
        finally:
            _on_line = None
    if rc != 0 or not dst.is_file():
        raise ConversionFailed(
            f"llama.cpp could not quantize {src.name} to {qtype} (code {rc})"
            + (f": {errors[-1]}" if errors else ""),
            hint="check the free space and that the source GGUF loads",
        )


class _progress:
    """A rich bar over tensors; a no-op when disabled."""

    def __init__(self, description: str, enabled: bool) -> None:
        self.description, self.enabled = description, enabled
        self.bar: Any = None

    def __enter__(self) -> Callable[[int, int], None]:
        if not self.enabled:
            return lambda _done, _total: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self.bar.start()
        task = self.bar.add_task(self.description, total=None)
        return lambda done, total: self.bar.update(task, completed=done, total=total)

    def __exit__(self, *_: object) -> None:
        if self.bar is not None:
            self.bar.stop()
