"""Model versions: the `stable` pointer that names the default model, and its history.

`potion models promote NAME` makes NAME the model that every "default model" means (the editor, the chat,
`potion complete` without `--model`); `potion models rollback` moves the pointer back to the model it
replaced. The pointer is one small JSON file in `settings.data_dir()` (user state, not cache):

    {"stack": ["qwen2.5-coder-0.5b", "my-run:q4_k_m"],          # promotions in effect, last = stable
     "history": [{"at": "...Z", "action": "promote", "from": "...", "to": "..."}, ...]}

Like the registry's models it is written to a temp file and published with `os.replace` under an
advisory lock, so a reader (the language server checking for a promotion at each request) sees the old
file or the new one, never half of one. `revision()` is a cheap stat of the file: callers compare it to
the one they loaded with, and reload only when it moved.

This module knows nothing of model files; `promote` asks the registry (imported lazily: the registry
reads the pointer) whether the spec resolves before moving the pointer to it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from potion import settings
from potion.errors import ModelVersionError

try:  # advisory lock: two promotions at once must not lose one (POSIX only)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

STABLE = "stable"  # the pointer's name, also accepted as a model spec
FILENAME = "versions.json"
HISTORY_LIMIT = 1000  # events kept; the stack itself is never trimmed


@dataclass(frozen=True)
class VersionEvent:
    """One move of the pointer: `action` is "promote" or "rollback"; `before`/`after` are model specs."""

    at: str
    action: str
    before: str
    after: str


def path() -> Path:
    return settings.data_dir() / FILENAME


def _builtin_default() -> str:
    from potion import registry  # lazy: the registry imports this module

    return registry.DEFAULT_MODEL


def stable() -> str:
    """The model spec `stable` points at: the last promoted model, else the built-in default."""
    stack = _read()["stack"]
    return stack[-1] if stack else _builtin_default()


def revision() -> tuple[int, int, int] | None:
    """A cheap token that changes whenever the pointer is written (each write is a new inode), or None
    while nothing was ever promoted. For watchers: compare, and call `stable()` only when it moved."""
    try:
        st = path().stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def history() -> list[VersionEvent]:
    """Every promotion and rollback, oldest first."""
    return [
        VersionEvent(at=e["at"], action=e["action"], before=e["from"], after=e["to"])
        for e in _read()["history"]
    ]


def promote(spec: str, *, check: Callable[[str], object] | None = None) -> VersionEvent | None:
    """Point `stable` at `spec`; None when it already does. `check(spec)` must raise for a model that
    cannot be used (default: the registry resolves it, without downloading or assembling anything)."""
    spec = (spec or "").strip()
    if not spec:
        raise ModelVersionError("promote needs a model name", hint="see `potion models list`")
    if spec == STABLE:
        raise ModelVersionError(
            "`stable` cannot point at itself", hint="name a model: see `potion models list`"
        )
    (check or _resolves)(spec)
    with _locked():
        state = _read()
        before = state["stack"][-1] if state["stack"] else _builtin_default()
        if before == spec:
            return None
        if not state["stack"]:
            state["stack"].append(before)  # the built-in default is where a first rollback returns to
        state["stack"].append(spec)
        return _record(state, "promote", before, spec)


def rollback() -> VersionEvent:
    """Point `stable` back at the model the last promotion replaced."""
    with _locked():
        state = _read()
        if len(state["stack"]) < 2:
            raise ModelVersionError(
                f"nothing to roll back: stable is {stable()!r} and no earlier promotion is on record",
                hint="see `potion models history`",
            )
        before = state["stack"].pop()
        return _record(state, "rollback", before, state["stack"][-1])


def _resolves(spec: str) -> None:
    from potion import registry

    registry.resolve_model(spec, pull=False)


def _record(state: dict[str, Any], action: str, before: str, after: str) -> VersionEvent:
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    state["history"].append({"at": at, "action": action, "from": before, "to": after})
    state["history"] = state["history"][-HISTORY_LIMIT:]
    _write(state)
    return VersionEvent(at=at, action=action, before=before, after=after)


def _read() -> dict[str, Any]:
    file = path()
    try:
        raw = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"stack": [], "history": []}
    except OSError as exc:
        raise ModelVersionError(
            f"cannot read {file}: {exc.strerror or exc}", hint="check its permissions"
        ) from exc
    try:
        state = json.loads(raw)
    except ValueError:
        state = None
    if (
        not isinstance(state, dict)
        or not isinstance(state.get("stack"), list)
        or not all(isinstance(s, str) and s for s in state["stack"])
        or not isinstance(state.get("history"), list)
        or not all(
            isinstance(e, dict) and {"at", "action", "from", "to"} <= e.keys() for e in state["history"]
        )
    ):
        raise ModelVersionError(
            f"{file} is damaged",
            hint="delete it to go back to the built-in default model, then promote again",
        )
    return state


def _write(state: dict[str, Any]) -> None:
    file = path()
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(state, out, indent=1)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, file)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """Serialise read-modify-write of the pointer across processes."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(path().parent / f".{FILENAME}.lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class StableWatcher:
    """Tells a long-running process (language server, chat) that `stable` moved to another model.

    `moved()` is one `stat` while the pointer file is untouched, so it is cheap enough for every request;
    only when the file changed does it read the pointer.
    """

    def __init__(self, loaded: str | None = None) -> None:
        self._seen = revision()
        self.loaded = loaded if loaded is not None else stable()

    def moved(self) -> str | None:
        """The newly stable model spec if it differs from the one loaded, else None. Raises
        ModelVersionError for a damaged pointer file (the caller keeps its model and says so)."""
        now = revision()
        if now == self._seen:
            return None
        spec = stable()
        self._seen = now
        if spec == self.loaded:
            return None
        self.loaded = spec
        return spec


__all__ = [
    "STABLE",
    "StableWatcher",
    "VersionEvent",
    "history",
    "path",
    "promote",
    "revision",
    "rollback",
    "stable",
]
