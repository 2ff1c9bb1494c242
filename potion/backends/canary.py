"""Canary routing: a share of suggestions goes to a candidate model, the rest to the stable one.

The split is deterministic per suggestion id: the first 8 bytes of sha256(id), read as a fraction of
2**64, fall below `share` for exactly that share of ids, and the same id always takes the same arm (a
retry, a replay of the telemetry, another process). No random state is kept.

The candidate is a second backend: an in-process llama.cpp model (its memory is checked first, while
the stable model is already loaded, so a model that would not fit is refused instead of swapping the
machine) or a model on an OpenAI-compatible server.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from potion.backends import open_backend
from potion.backends.base import Backend
from potion.errors import PotionError

STABLE = "stable"
CANARY = "canary"

# An in-process model needs its weights (mmap'ed, but every page is touched while generating) plus the
# KV cache and llama.cpp's scratch buffers. The GGUF header would give the exact KV size; this margin is
# the measured order of magnitude for the 0.5B-7B coder models at n_ctx 4096 and keeps the check cheap.
_WEIGHTS_FACTOR = 1.2
_RUNTIME_BYTES = 512 << 20


class CanaryError(PotionError):
    """The canary settings are invalid, or the candidate model cannot be served."""


@dataclass(frozen=True)
class CanaryConfig:
    """`potion.canary.*`: the candidate model (a model spec, or the name a server knows it by), its
    server (None: the stable model's server, or in-process when the stable one is), and its share."""

    model: str | None = None
    backend_url: str | None = None
    share: float = 0.0

    def __post_init__(self) -> None:
        check_share(self.share)

    @property
    def enabled(self) -> bool:
        return bool(self.model or self.backend_url) and self.share > 0


def check_share(share: object, *, setting: str = "potion.canary.share") -> float:
    """`share` as a float in [0, 1]; CanaryError naming `setting` otherwise."""
    if isinstance(share, bool) or not isinstance(share, int | float) or share != share:  # NaN too
        raise CanaryError(f"setting {setting!r} must be a number between 0 and 1, got {share!r}")
    if not 0.0 <= float(share) <= 1.0:
        raise CanaryError(
            f"setting {setting!r} must be between 0 and 1, got {share!r}",
            hint="0.1 sends one suggestion in ten to the canary model",
        )
    return float(share)


def routes_to_canary(suggestion_id: str, share: float) -> bool:
    """Whether the suggestion `suggestion_id` goes to the canary model (see the module docstring)."""
    if share <= 0.0:
        return False
    if share >= 1.0:
        return True
    digest = hashlib.sha256(suggestion_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < share


def available_memory() -> int | None:
    """Bytes of memory the system can still give without swapping (Linux MemAvailable), else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_needed(model_path: Path, adapter_path: Path | None = None) -> int:
    """Bytes an in-process model needs, estimated from its file size (see `_WEIGHTS_FACTOR`)."""
    size = model_path.stat().st_size + (adapter_path.stat().st_size if adapter_path else 0)
    return int(size * _WEIGHTS_FACTOR) + _RUNTIME_BYTES


def check_memory(name: str, needed: int, available: int | None) -> None:
    """CanaryError when a second in-process model of `needed` bytes would not fit in `available`."""
    if available is None or needed <= available:
        return
    gib = 1 << 30
    raise CanaryError(
        f"the canary model {name} needs about {needed / gib:.1f} GiB of memory and "
        f"{available / gib:.1f} GiB are available next to the stable model",
        hint="serve it from a server with potion.canary.backendUrl, or pick a smaller model",
    )


def open_candidate(config: CanaryConfig, *, stable_url: str | None = None, n_ctx: int = 4096) -> Backend:
    """The candidate's backend, not loaded yet. Raises ModelNotFound/ModelCorrupt for an unknown or
    broken model and CanaryError when an in-process model would not fit in memory."""
    url = config.backend_url or stable_url
    if url:
        return open_backend(config.model, url=url, n_ctx=n_ctx)
    if not config.model:
        raise CanaryError("setting 'potion.canary.model' is empty", hint="name a model or set backendUrl")
    from potion import registry

    resolved = registry.resolve_model(config.model)
    check_memory(config.model, memory_needed(resolved.path, resolved.adapter), available_memory())
    return open_backend(config.model, n_ctx=n_ctx)


def describe_failure(model: str, exc: BaseException) -> str:
    """The one line a user sees when the canary cannot serve: the stable model keeps every suggestion."""
    reason = exc.user_message() if isinstance(exc, PotionError) else f"{type(exc).__name__}: {exc}"
    return f"the canary model {model} is not used: {reason}. The stable model serves every suggestion."


__all__ = [
    "CANARY",
    "STABLE",
    "CanaryConfig",
    "CanaryError",
    "available_memory",
    "check_memory",
    "check_share",
    "describe_failure",
    "memory_needed",
    "open_candidate",
    "routes_to_canary",
]
