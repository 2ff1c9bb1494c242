"""llama.cpp's own converters, from the very llama.cpp the runtime links.

The pinned llama-cpp-python source distribution vendors llama.cpp (`vendor/llama.cpp/`), and with it
`convert_hf_to_gguf.py`, `convert_lora_to_gguf.py` and `gguf-py`. We fetch that sdist once from the
package index (PEP 503 simple API), hashing while we write, refuse it unless its sha256 is the pinned one,
extract only the converters into a versioned cache folder and publish the folder with `os.replace`.
A killed fetch leaves only a `.partial` file or folder, removed by the next run.

Why not `pip download`: for an sdist pip prepares its metadata, which builds an isolated environment
with scikit-build-core: 2.5 minutes on two cores to get one file. The file and its hash are the same.

The converters then run in a subprocess (`run_converter`) with the vendored gguf-py first on the path, so
the GGUF they write is the one this llama.cpp reads; their own tqdm bar is the progress.
"""

from __future__ import annotations

import contextlib
import hashlib
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from potion import settings
from potion.hub import byte_progress
from quantize.errors import ConversionFailed, ConverterDownloadError, ConverterVerifyError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

PACKAGE = "llama-cpp-python"
VERSION = "0.3.36"
SDIST = f"llama_cpp_python-{VERSION}.tar.gz"
# The sha256 PyPI publishes for SDIST (its simple index, #sha256=...), checked 2026-12-01.
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
DEFAULT_INDEX = "https://pypi.org/simple"
_VENDOR = "vendor/llama.cpp/"
_WANTED = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/", "gguf-py/")
_BLOCK = 1 << 20


@dataclass(frozen=True)
class Converters:
    """An extracted, verified copy of llama.cpp's converters."""

    root: Path
    sdist_sha256: str
    script_sha256: str  # sha256 of convert_hf_to_gguf.py + convert_lora_to_gguf.py, for the export sidecar

    @property
    def hf_to_gguf(self) -> Path:
        return self.root / "convert_hf_to_gguf.py"

    @property
    def lora_to_gguf(self) -> Path:
        return self.root / "convert_lora_to_gguf.py"

    @property
    def gguf_py(self) -> Path:
        return self.root / "gguf-py"


def converters_dir() -> Path:
    """Where converters are cached: $POTION_CONVERTERS_DIR, else the user cache (shared by exports)."""
    value = os.environ.get("POTION_CONVERTERS_DIR")
    path = Path(value).expanduser() if value else settings.cache_dir() / "llama-cpp-converters"
    path.mkdir(parents=True, exist_ok=True)
    return path


def index_url() -> str:
    """The package index: $POTION_PACKAGE_INDEX, else $PIP_INDEX_URL, else PyPI."""
    return (
        os.environ.get("POTION_PACKAGE_INDEX") or os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX
    ).rstrip("/")


def fetch_converters(
    *, index: str | None = None, expected_sha256: str = SDIST_SHA256, progress: bool = True
) -> Converters:
    """The cached converters, fetching and verifying the sdist first if needed (once, under a lock)."""
    root = converters_dir()
    target = root / f"{VERSION}-{expected_sha256[:12]}"
    with _lock(root):
        found = _load(target, expected_sha256)
        if found is not None:
            return found
        for stale in root.glob(".*.partial"):
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
        tmp_dir = Path(tempfile.mkdtemp(dir=root, prefix=f".{target.name}.", suffix=".partial"))
        try:
            sdist = tmp_dir / SDIST
            _download(index or index_url(), sdist, expected_sha256, progress=progress)
            _extract(sdist, tmp_dir / "converters")
            sdist.unlink()
            record = {
                "package": PACKAGE,
                "version": VERSION,
                "sdist_sha256": expected_sha256,
                "script_sha256": _scripts_sha256(tmp_dir / "converters"),
            }
            (tmp_dir / "converters" / "converters.json").write_text(json.dumps(record, indent=1) + "\n")
            if target.exists():  # a damaged copy that _load refused
                shutil.rmtree(target)
            os.replace(tmp_dir / "converters", target)
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
        found = _load(target, expected_sha256)
        assert found is not None
        return found


def run_converter(
    converters: Converters, script: Path, args: Sequence[str | os.PathLike[str]], *, progress: bool = True
) -> None:
    """Run one of the converters in a subprocess; ConversionFailed with its last lines on failure.

    With `progress` the converter's own tqdm bar (its `Writing:` line, with ETA) is shown on our stderr;
    its per-tensor log lines are kept only for the error message.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(converters.gguf_py), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env.pop("NO_LOCAL_GGUF", None)  # else the scripts would skip their sibling (vendored) gguf-py
    cmd = [sys.executable, str(script), *map(str, args)]
    log: list[str] = []
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=converters.root, bufsize=0
    )
    assert proc.stdout is not None
    pending = b""
    try:
        while chunk := proc.stdout.read(4096):
            pending += chunk
            *lines, pending = re.split(rb"[\r\n]", pending)
            for raw in lines:
                line = raw.decode("utf-8", "replace")
                if line.startswith("Writing:"):
                    if progress:
                        sys.stderr.write("\r" + line)
                        sys.stderr.flush()
                elif line.strip():
                    log.append(line)
        rc = proc.wait()
    except BaseException:
        proc.kill()  # Ctrl-C or a kill of ours: leave no converter writing behind us
        proc.wait()
        raise
    if progress:
        sys.stderr.write("\n")
    if rc != 0:
        raise ConversionFailed(
            f"{script.name} failed (exit {rc}): " + " | ".join(log[-4:]),
            hint="the base model or adapter may be damaged or of a shape llama.cpp does not convert",
        )


# --- fetching -----------------------------------------------------------------------------------


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(v for k, v in attrs if k == "href" and v)


def _download(index: str, dest: Path, expected: str, *, progress: bool) -> None:
    import httpx

    page_url = f"{index}/{PACKAGE}/"
    hint = f"check the network or set POTION_PACKAGE_INDEX to a reachable index (tried {index})"
    try:
        with httpx.Client(follow_redirects=True, timeout=httpx.Timeout(30.0)) as client:
            page = client.get(page_url, headers={"Accept": "text/html"})
            page.raise_for_status()
            parser = _Links()
            parser.feed(page.text)
            links = [h for h in parser.hrefs if urlsplit(h).path.rsplit("/", 1)[-1] == SDIST]
            if not links:
                raise ConverterDownloadError(f"{page_url} lists no {SDIST}", hint=hint)
            url = urljoin(page_url, links[0]).split("#", 1)[0]
            h = hashlib.sha256()
            with client.stream("GET", url) as resp, open(dest, "wb") as out:
                resp.raise_for_status()
                total = int(resp.headers.get("content-length") or 0) or None
                with byte_progress(
                    f"fetching llama.cpp converters ({SDIST})", total, enabled=progress
                ) as adv:
                    for block in resp.iter_bytes(_BLOCK):
                        h.update(block)
                        out.write(block)
                        adv(len(block))
    except httpx.HTTPError as exc:
        raise ConverterDownloadError(f"cannot fetch {SDIST}: {exc}", hint=hint) from exc
    except OSError as exc:
        raise ConverterDownloadError(
            f"cannot write {dest}: {exc.strerror or exc}", hint="check free space in the cache folder"
        ) from exc
    if h.hexdigest() != expected:
        raise ConverterVerifyError(
            f"{url} has sha256 {h.hexdigest()[:12]}…, expected {expected[:12]}… ({PACKAGE} {VERSION})",
            hint="the index served another file: point POTION_PACKAGE_INDEX at a trusted index",
        )


def _extract(sdist: Path, dest: Path) -> None:
    prefix = f"llama_cpp_python-{VERSION}/{_VENDOR}"
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            members = []
            for m in tar.getmembers():
                rel = m.name[len(prefix) :] if m.name.startswith(prefix) else None
                if rel and rel.startswith(_WANTED) and (m.isfile() or m.isdir()):
                    m.name = rel
                    members.append(m)
            dest.mkdir(parents=True)
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise ConverterVerifyError(f"cannot unpack {sdist.name}: {exc}", hint="delete it and retry") from exc
    missing = [w for w in _WANTED if not (dest / w).exists()]
    if missing:
        raise ConverterVerifyError(
            f"{sdist.name} has no {', '.join(missing)} under {_VENDOR}",
            hint=f"this export needs {PACKAGE}=={VERSION}'s source distribution",
        )


def _scripts_sha256(root: Path) -> str:
    h = hashlib.sha256()
    for name in _WANTED[:2]:
        h.update((root / name).read_bytes())
    return h.hexdigest()


def _load(target: Path, expected: str) -> Converters | None:
    try:
        record = json.loads((target / "converters.json").read_text())
    except (OSError, ValueError):
        return None
    if record.get("sdist_sha256") != expected:
        return None
    try:
        if _scripts_sha256(target) != record.get("script_sha256"):
            return None  # edited or damaged since: fetch again
    except OSError:
        return None
    return Converters(target, expected, record["script_sha256"])


@contextlib.contextmanager
def _lock(root: Path) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(root / ".fetch.lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
