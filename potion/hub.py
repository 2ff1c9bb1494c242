"""Models from the Hugging Face hub: `hf:OWNER/REPO/FILE.gguf` through `huggingface_hub.hf_hub_download`.

The hub library keeps its own cache (HF_HOME / HF_HUB_CACHE) and resumes interrupted downloads, so we
only turn a spec into its arguments and its errors into one-line messages. `huggingface_hub` reads
HF_ENDPOINT and HF_HOME once at import; we read them at call time and pass them explicitly, so a
change of environment (tests, a long-running language server) is honoured. It is imported lazily:
the editor path resolving a local model should not pay for it.

Also home of `byte_progress`, the rich progress bar for every byte-moving operation (assembly, pull).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from potion.errors import ModelDownloadError, ModelNotFound

HF_PREFIX = "hf:"
DEFAULT_ENDPOINT = "https://huggingface.co"
_PROBE_TIMEOUT_S = 5.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class HfSpec:
    """`hf:OWNER/REPO[@REVISION]/PATH/IN/REPO.gguf`, split."""

    repo_id: str
    filename: str
    revision: str | None = None

    def __str__(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        return f"{HF_PREFIX}{self.repo_id}{rev}/{self.filename}"


def is_hf_spec(spec: str) -> bool:
    return spec.startswith(HF_PREFIX)


def parse_hf_spec(spec: str) -> HfSpec:
    """Split an `hf:` spec; anything malformed is a ModelNotFound naming the expected shape."""
    usage = (
        "use hf:OWNER/REPO/FILE.gguf, e.g. "
        "hf:Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    )
    body = spec[len(HF_PREFIX) :] if is_hf_spec(spec) else spec
    parts = body.strip("/").split("/")
    if len(parts) < 3:
        raise ModelNotFound(f"{spec!r} does not name a file in a hub repository", hint=usage)
    owner, repo, path = parts[0], parts[1], parts[2:]
    revision = None
    if "@" in repo:
        repo, revision = repo.split("@", 1)
    if not all(_NAME.match(x) for x in (owner, repo)) or any(p in ("", ".", "..") for p in path):
        raise ModelNotFound(f"{spec!r} is not a valid hub model spec", hint=usage)
    if not path[-1].lower().endswith(".gguf"):
        raise ModelNotFound(
            f"{spec!r} is not a .gguf file",
            hint="llama.cpp loads GGUF files; pick the .gguf file of a GGUF repository",
        )
    return HfSpec(f"{owner}/{repo}", "/".join(path), revision or None)


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hub_cache_dir() -> Path:
    """huggingface_hub's cache folder, computed from the environment now (not at its import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    hf_home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
    )
    return Path(hf_home).expanduser() / "hub"


def download(spec: str | HfSpec, *, pull: bool = True, progress: bool = False) -> Path:
    """The local path of a hub GGUF, downloading it unless `pull` is False.

    With `pull=False` only the cache is consulted: ModelNotFound if the file is not there yet.
    Network and hub failures become ModelDownloadError. huggingface_hub resumes a dropped transfer
    within the call (Range requests) and deletes its temp file if it gives up, so an incomplete
    download is never returned nor left looking like the model.
    """
    hf = spec if isinstance(spec, HfSpec) else parse_hf_spec(spec)
    import huggingface_hub
    from huggingface_hub import errors as hf_errors

    url = endpoint()
    offline_env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
    offline = not pull or offline_env or _hub_unreachable(hf, url)
    if offline and pull:
        # A cached copy still serves; otherwise fail now rather than after the library's ~23 s of
        # back-off retries, which cannot help when nothing answers at all.
        try:
            cached = huggingface_hub.hf_hub_download(
                hf.repo_id,
                hf.filename,
                revision=hf.revision,
                cache_dir=hub_cache_dir(),
                local_files_only=True,
            )
        except hf_errors.LocalEntryNotFoundError:
            if offline_env:
                raise ModelDownloadError(
                    f"HF_HUB_OFFLINE is set and {hf} is not in the hub cache",
                    hint="unset HF_HUB_OFFLINE to download it, or pass the path of a local .gguf file",
                ) from None
            raise ModelDownloadError(
                f"cannot reach the Hugging Face hub at {url} to fetch {hf}",
                hint="download the file and pass its path, or set HF_ENDPOINT",
            ) from None
        return Path(cached)
    try:
        path = huggingface_hub.hf_hub_download(
            hf.repo_id,
            hf.filename,
            revision=hf.revision,
            cache_dir=hub_cache_dir(),
            endpoint=url,
            local_files_only=offline,
            tqdm_class=_RichTqdm if progress else _SilentTqdm,  # type: ignore[arg-type]
        )
    except hf_errors.LocalEntryNotFoundError as exc:
        if not pull:
            raise ModelNotFound(f"{hf} is not downloaded yet", hint=f"run `potion models pull {hf}`") from exc
        cause = exc.__cause__
        if isinstance(cause, hf_errors.FileMetadataError):
            raise ModelDownloadError(
                f"the server at {url} does not answer like a Hugging Face hub (no X-Repo-Commit/ETag)",
                hint="check HF_ENDPOINT, proxies and firewalls",
            ) from exc
        if isinstance(cause, hf_errors.HfHubHTTPError):
            status = getattr(getattr(cause, "response", None), "status_code", "?")
            raise ModelDownloadError(
                f"the Hugging Face hub at {url} answered HTTP {status} for {hf}",
                hint="try again later, or download the file and pass its path",
            ) from exc
        raise ModelDownloadError(
            f"cannot reach the Hugging Face hub at {url} to fetch {hf}",
            hint="download the file and pass its path, or set HF_ENDPOINT",
        ) from exc
    except hf_errors.GatedRepoError as exc:
        raise ModelDownloadError(
            f"{hf.repo_id} is gated on the hub", hint="accept its licence on the hub and run `hf auth login`"
        ) from exc
    except hf_errors.RepositoryNotFoundError as exc:
        raise ModelNotFound(
            f"no hub repository {hf.repo_id} at {url}",
            hint="check the OWNER/REPO spelling (private repos need `hf auth login`)",
        ) from exc
    except hf_errors.RevisionNotFoundError as exc:
        raise ModelNotFound(
            f"{hf.repo_id} has no revision {hf.revision!r}", hint="check the @REVISION"
        ) from exc
    except hf_errors.RemoteEntryNotFoundError as exc:
        raise ModelNotFound(
            f"{hf.repo_id} has no file {hf.filename}",
            hint="check the file name in the repository's file list",
        ) from exc
    except hf_errors.HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        raise ModelDownloadError(
            f"downloading {hf} from {url} failed (HTTP {status})",
            hint="check the connection and run the command again, or download the file and pass its path",
        ) from exc
    except (OSError, *_transport_errors()) as exc:
        # Dropped connections after huggingface_hub's own retries, consistency checks, full disks.
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelDownloadError(
            f"downloading {hf} from {url} failed: {reason}",
            hint="check the connection and run the command again, or download the file and pass its path",
        ) from exc
    return Path(path)


def _hub_unreachable(hf: HfSpec, url: str) -> bool:
    """True when nothing answers at the hub endpoint (refused, DNS failure, timeout): a quick probe."""
    import httpx

    rev = quote(hf.revision or "main", safe="")
    try:
        httpx.head(f"{url}/{hf.repo_id}/resolve/{rev}/{quote(hf.filename)}", timeout=_PROBE_TIMEOUT_S)
    except (httpx.ConnectError, httpx.TimeoutException, httpx.UnsupportedProtocol):
        return True
    except httpx.HTTPError:
        return False  # it answered, if oddly: let huggingface_hub report the details
    return False


def cached_sha256(path: Path) -> str | None:
    """The sha256 a hub cache file should have: LFS blobs are named by it (None for small git files)."""
    blob = path.resolve().name
    return blob if re.fullmatch(r"[0-9a-f]{64}", blob) else None


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The HTTP client's exception base, whichever client this huggingface_hub version uses."""
    found: list[type[BaseException]] = []
    for module in ("httpx2", "httpx", "requests"):
        mod = sys.modules.get(module)
        for attr in ("HTTPError", "TransportError", "RequestException"):
            cls = getattr(mod, attr, None) if mod else None
            if isinstance(cls, type) and issubclass(cls, BaseException):
                found.append(cls)
    return tuple(found)


# --- progress -------------------------------------------------------------------------------------


@contextmanager
def byte_progress(
    description: str, total: int | None, *, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """A rich progress bar in bytes on stderr (stdout stays clean for `potion models path`).

    Yields `advance(n)`; when disabled it is a no-op, so callers need no branches.
    """
    if not enabled:
        yield lambda _n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


class _SilentTqdm:
    """The tqdm-like object huggingface_hub drives, doing nothing (progress=False)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> _SilentTqdm:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: float | None = 1) -> None:
        pass

    def close(self) -> None:
        pass


class _RichTqdm(_SilentTqdm):
    """Forwards huggingface_hub's tqdm updates to `byte_progress`, so every bar in Potion looks alike."""

    def __init__(
        self, *args: Any, total: int | None = None, initial: int = 0, desc: str = "", **kw: Any
    ) -> None:
        self._cm = byte_progress(f"downloading {desc}".strip(), total)
        self._advance = self._cm.__enter__()
        if initial:
            self._advance(initial)

    def update(self, n: float | None = 1) -> None:
        self._advance(int(n or 0))

    def close(self) -> None:
        if self._cm is not None:
            self._cm.__exit__(None, None, None)
            self._cm = None

    def __exit__(self, *exc: object) -> None:
        self.close()
