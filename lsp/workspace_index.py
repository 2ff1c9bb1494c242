"""What the language server knows about Elixir code: the workspace, its `deps/`, open buffers, stdlib.

One `WorkspaceIndex` per server answers "which functions does `Mod` have, with what spec and doc" for
completion, hover and code actions. Sources, in the order a name is looked up:

1. open documents (the editor's unsaved text), re-analysed lazily: a change only marks the buffer
   dirty, the next query re-parses it, so typing never pays for a parse per keystroke;
2. `.ex`/`.exs` files of the workspace folders, scanned once on a background thread;
3. `deps/*/lib` of those folders (same scan);
4. the Elixir standard library from `potion.elixir.docs.load_stdlib_index()` (shipped data).

Everything is keyed by module name; the first source that defines a module wins for its moduledoc,
and functions merge so a module split across files still lists all of them.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lsp.callbacks import CALLBACKS, Callback, Known, declared_behaviours, parse_callbacks
from lsp.context import uri_path
from lsp.open_buffers import OpenBuffer
from potion.elixir import SourceAnalysis, analyze
from potion.elixir.docs import DocsIndex, FunctionDoc, load_stdlib_index
from potion.elixir.model import FunctionDef, ModuleDef

log = logging.getLogger(__name__)

SOURCES = ("open", "workspace", "deps", "stdlib")
# Folders never worth parsing: build output, VCS, JS, and tests of dependencies.
_SKIP_DIRS = frozenset(
    {"_build", ".git", ".elixir_ls", ".lexical", ".expert", "node_modules", "priv", "cover"}
)
MAX_FILES = 5000
MAX_FILE_BYTES = 1_000_000


@dataclass(frozen=True)
class FunctionInfo:
    """One function (all its arities) of a module, as completion and hover show it."""

    module: str
    name: str
    arities: tuple[int, ...]
    kind: str  # def, defmacro, defp, ...
    signature: str  # `map(enumerable, fun)`
    spec: str | None  # without `@spec`; several specs joined with newlines
    doc: str | None
    source: str  # one of SOURCES
    path: str | None = None
    line: int | None = None  # 0-based line of the first clause

    @property
    def public(self) -> bool:
        return self.kind in ("def", "defmacro", "defguard", "defdelegate")

    @property
    def label(self) -> str:
        """`name/arity`, or `name/1..3` for default arguments."""
        low, high = self.arities[0], self.arities[-1]
        return f"{self.name}/{low}" if low == high else f"{self.name}/{low}..{high}"


@dataclass(frozen=True)
class ModuleInfo:
    name: str
    moduledoc: str | None
    source: str
    path: str | None = None
    line: int | None = None


def function_info(fn: FunctionDef, source: str, path: str | None) -> FunctionInfo:
    return FunctionInfo(
        module=fn.module,
        name=fn.name,
        arities=tuple(fn.arities),
        kind=fn.kind,
        signature=fn.signature(),
        spec=fn.spec,
        doc=None if fn.doc_hidden else fn.doc,
        source=source,
        path=path,
        line=fn.line,
    )


# Above this size a dirty buffer is re-parsed in the background for completion, which then uses the
# previous analysis (one keystroke old): a 5 MB file takes ~0.7 s even incrementally.
STALE_OK_CHARS = 200_000


class WorkspaceIndex:
    """Modules and functions of the workspace, deps, open buffers and stdlib; safe across threads."""

    def __init__(
        self,
        roots: Sequence[str | Path] = (),
        *,
        stdlib: bool | DocsIndex = True,
        text_of: Callable[[str], str] | None = None,
    ) -> None:
        """`stdlib`: True loads the shipped stdlib docs index when first needed, False uses none, a
        DocsIndex (tests) is used as it is. `text_of(uri)`: the current text of an open document, for
        `document_event` (the language server passes its own document store)."""
        self.roots = [Path(r) for r in roots]
        self._text_of = text_of
        self._lock = threading.RLock()
        # path -> (source kind, modules defined there), for files on disk.
        self._files: dict[str, tuple[str, list[ModuleDef]]] = {}
        # uri -> analysis of an open buffer; None when dirty (re-analysed on the next query).
        self._open: dict[str, OpenBuffer] = {}
        self._by_module: dict[str, list[tuple[str, str, ModuleDef]]] | None = None  # rebuilt lazily
        self._want_stdlib = stdlib is not False
        self._stdlib_lock = threading.Lock()
        self._stdlib: DocsIndex | None = None if isinstance(stdlib, bool) else stdlib
        self._stdlib_tried = not isinstance(stdlib, bool)
        self.scanned = threading.Event()
        self._scan_thread: threading.Thread | None = None

    # -- filling ------------------------------------------------------------------------------------

    def scan(self) -> int:
        """Analyse every Elixir file under the roots (workspace code and deps); returns the count."""
        count = 0
        for path, kind in self._elixir_files():
            try:
                data = path.read_bytes()
            except OSError as exc:
                log.info("skipping %s: %s", path, exc)
                continue
            analysis = analyze(data, path=str(path))
            with self._lock:
                self._files[str(path)] = (kind, analysis.modules)
                self._by_module = None
            count += 1
        self.scanned.set()
        return count

    def scan_in_background(self) -> None:
        """Start `scan` (and the stdlib load) on a daemon thread, once."""
        with self._lock:
            if self._scan_thread is not None:
                return
            self._scan_thread = threading.Thread(target=self._background, name="potion-index", daemon=True)
        self._scan_thread.start()

    def _background(self) -> None:
        try:
            self._stdlib_index()
            log.info("indexed %d Elixir files", self.scan())
        except Exception:  # a broken index must not take the server down; features degrade
            log.exception("workspace scan failed")
            self.scanned.set()

    def _elixir_files(self) -> Iterable[tuple[Path, str]]:
        seen = 0
        for root in self.roots:
            for dirpath, dirnames, filenames in os.walk(root):
                rel = Path(dirpath).relative_to(root).parts
                in_deps = "deps" in rel
                # Inside deps/<name>/ only lib/ matters: tests and configs of dependencies are noise.
                if in_deps:
                    depth = rel.index("deps")
                    below = rel[depth + 1 :]
                    if len(below) == 1:
                        dirnames[:] = [d for d in dirnames if d == "lib"]
                dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
                for name in sorted(filenames):
                    if not name.endswith((".ex", ".exs")):
                        continue
                    path = Path(dirpath) / name
                    try:
                        if path.stat().st_size > MAX_FILE_BYTES:
                            continue
                    except OSError:
                        continue
                    yield path, "deps" if in_deps else "workspace"
                    seen += 1
                    if seen >= MAX_FILES:
                        log.warning("workspace index stops at %d files", MAX_FILES)
                        return

    def open_document(self, uri: str, text_of: Callable[[], str]) -> None:
        """Track an open buffer; `text_of()` returns its current text when the index needs it."""
        with self._lock:
            self._open[uri] = OpenBuffer(text_of, uri_path(uri))
            self._by_module = None

    def is_open(self, uri: str) -> bool:
        with self._lock:
            return uri in self._open

    def changed(self, uri: str) -> None:
        with self._lock:
            buffer = self._open.get(uri)
            if buffer is not None:
                buffer.dirty = True

    def close_document(self, uri: str) -> None:
        """Back to the file on disk (re-read: the buffer may have been saved, or discarded)."""
        with self._lock:
            self._open.pop(uri, None)
            self._by_module = None
        path = uri_path(uri)
        if path and Path(path).is_file() and self._under_roots(Path(path)):
            self.reload_file(path)

    def forget_file(self, path: str | Path) -> None:
        with self._lock:
            if self._files.pop(str(path), None) is not None:
                self._by_module = None

    def reload_file(self, path: str | Path) -> None:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError:
            with self._lock:
                self._files.pop(str(path), None)
                self._by_module = None
            return
        kind = "deps" if "deps" in path.parts else "workspace"
        analysis = analyze(data, path=str(path))
        with self._lock:
            self._files[str(path)] = (kind, analysis.modules)
            self._by_module = None

    def _under_roots(self, path: Path) -> bool:
        return any(path.is_relative_to(root) for root in self.roots)

    # -- following the editor -----------------------------------------------------------------------

    def start(self, roots: Sequence[str | Path]) -> None:
        """Index these workspace folders (known once the client initialized) in the background."""
        with self._lock:
            self.roots = [Path(r) for r in roots if Path(r).is_dir()]
        self.scan_in_background()

    def document_event(self, event: str, uri: str) -> None:
        """A document listener (`PotionServer.add_document_listener`): open, change, save, close."""
        if event == "open":
            text_of = self._text_of
            self.open_document(uri, (lambda: text_of(uri)) if text_of is not None else lambda: "")
        elif event == "change":
            self.changed(uri)
        elif event == "save":
            self.changed(uri)
            path = uri_path(uri)
            if path:
                self.reload_file(path)  # the saved file is what deps and other buffers see on disk
        elif event == "close":
            self.close_document(uri)

    def file_changed(self, uri: str, *, deleted: bool) -> None:
        """A file changed outside the editor (`workspace/didChangeWatchedFiles`)."""
        path = uri_path(uri)
        if not path.endswith((".ex", ".exs")) or self.is_open(uri):
            return  # an open buffer is the truth until it is closed
        if deleted:
            self.forget_file(path)
        elif self._under_roots(Path(path)):
            self.reload_file(path)

    # -- queries ------------------------------------------------------------------------------------

    def analysis(self, uri: str, *, stale_ok: bool = False) -> SourceAnalysis | None:
        """The analysis of an open buffer (None if not open), re-parsed if it changed.

        `stale_ok`: for a big buffer, or one being re-parsed right now, answer with the previous
        analysis at once and re-parse on a background thread (completion must not stall typing).
        """
        with self._lock:
            buffer = self._open.get(uri)
        if buffer is None:
            return None
        if buffer.dirty and stale_ok:
            if buffer.document is None and len(buffer.text_of()) > STALE_OK_CHARS:
                self._refresh_in_background(buffer)  # the first parse of a huge file: ~1.5 s per 5 MB
                return None
            if buffer.document is not None and (len(buffer.text) > STALE_OK_CHARS or buffer.lock.locked()):
                stale = buffer.analysis
                self._refresh_in_background(buffer)
                return stale
        if buffer.dirty or buffer.document is None:
            analysis = buffer.refresh()
            with self._lock:
                self._by_module = None
            return analysis
        return buffer.analysis

    def _refresh_in_background(self, buffer: OpenBuffer) -> None:
        with self._lock:
            if buffer.refreshing:
                return
            buffer.refreshing = True

        def run() -> None:
            try:
                buffer.refresh()
                with self._lock:
                    self._by_module = None
            finally:
                buffer.refreshing = False

        threading.Thread(target=run, name="potion-reparse", daemon=True).start()

    def _modules(self) -> dict[str, list[tuple[str, str, ModuleDef]]]:
        for uri in list(self._open):
            self.analysis(uri, stale_ok=True)  # re-analyse dirty buffers first (outside the lock)
        with self._lock:
            if self._by_module is not None:
                return self._by_module
            table: dict[str, list[tuple[str, str, ModuleDef]]] = {}
            open_paths = set()
            for uri, buffer in self._open.items():
                analysis = buffer.analysis
                if analysis is None:
                    continue
                path = uri_path(uri) or uri
                open_paths.add(path)
                for mod in analysis.modules:
                    table.setdefault(mod.name, []).append(("open", path, mod))
            for kind in ("workspace", "deps"):
                for path, (file_kind, modules) in self._files.items():
                    if file_kind != kind or path in open_paths:
                        continue  # an open buffer replaces its file on disk
                    for mod in modules:
                        table.setdefault(mod.name, []).append((kind, path, mod))
            self._by_module = table
            return table

    def _stdlib_index(self) -> DocsIndex | None:
        if not self._want_stdlib:
            return None
        # A query arriving while the background thread loads waits for it (~50 ms) rather than
        # answering without the stdlib.
        with self._stdlib_lock:
            if self._stdlib_tried:
                return self._stdlib
            try:
                self._stdlib = load_stdlib_index()
            except Exception as exc:  # missing or unreadable data: stdlib hover/completion are off
                log.warning("Elixir stdlib docs index unavailable: %s", exc)
                self._stdlib = None
            self._stdlib_tried = True
            return self._stdlib

    def module(self, name: str) -> ModuleInfo | None:
        entries = self._modules().get(name)
        if entries:
            source, path, mod = entries[0]
            doc = next((m.moduledoc for _, _, m in entries if m.moduledoc and not m.moduledoc_hidden), None)
            return ModuleInfo(name, doc, source, path, mod.line)
        stdlib = self._stdlib_index()
        entry = stdlib.module(name) if stdlib is not None else None
        if entry is None:
            return None
        return ModuleInfo(entry.name, entry.doc, "stdlib")

    def known_callbacks(self, module: ModuleDef) -> Known:
        """The built-in callback table plus the `@callback`s of the module's own behaviours found in
        the workspace, deps or open buffers (`@behaviour MyApp.Plugin`)."""
        custom = {}
        for name in declared_behaviours(module):
            if name not in CALLBACKS and (found := self.behaviour_callbacks(name)):
                custom[name] = found
        return {**CALLBACKS, **custom} if custom else CALLBACKS

    def behaviour_callbacks(self, name: str) -> list[Callback]:
        """`@callback`s declared by module `name` (empty if it is unknown or declares none)."""
        entries = self._modules().get(name)
        if not entries:
            return []
        source, path, mod = entries[0]
        data: bytes | None = None
        if source == "open":
            with self._lock:
                buffers = [b for uri, b in self._open.items() if (uri_path(uri) or uri) == path]
            if buffers and buffers[0].document is not None:
                data = buffers[0].document.data
        else:
            try:
                data = Path(path).read_bytes()
            except OSError:
                return []
        if data is None:
            return []
        return parse_callbacks(name, data[mod.start_byte : mod.end_byte].decode("utf-8", "replace"))

    def functions(self, module: str, *, public_only: bool = True) -> list[FunctionInfo]:
        """Functions of `module`, sorted by name; from the code if we have it, else from stdlib docs."""
        entries = self._modules().get(module)
        out: dict[tuple[str, tuple[int, ...]], FunctionInfo] = {}
        if entries:
            for source, path, mod in entries:
                for fn in mod.functions:
                    if public_only and not fn.public:
                        continue
                    if fn.doc_hidden and public_only:
                        continue
                    out.setdefault((fn.name, tuple(fn.arities)), function_info(fn, source, path))
        else:
            stdlib = self._stdlib_index()
            if stdlib is not None:
                for entry in stdlib.functions(module):
                    info = _stdlib_function(entry)
                    out.setdefault((info.name, info.arities), info)
        return sorted(out.values(), key=lambda f: (f.name, f.arities))

    def function(self, module: str, name: str, arity: int | None = None) -> list[FunctionInfo]:
        """Every arity of `module.name` (or just the one covering `arity`)."""
        found = [
            f
            for f in self.functions(module, public_only=False)
            if f.name == name and (arity is None or arity in f.arities)
        ]
        return found

    def module_names(self, prefix: str = "") -> list[str]:
        """Known module names starting with `prefix` (workspace, deps, open buffers, stdlib)."""
        names = {n for n in self._modules() if n.startswith(prefix)}
        stdlib = self._stdlib_index()
        if stdlib is not None:
            names.update(n for n in stdlib.modules if n.startswith(prefix))
        return sorted(names)


def _stdlib_function(entry: FunctionDoc) -> FunctionInfo:
    return FunctionInfo(
        module=entry.module,
        name=entry.name,
        arities=tuple(entry.arities),
        kind="defmacro" if entry.kind == "macro" else "def",
        signature=entry.signature,
        spec=entry.spec,
        doc=entry.doc,
        source="stdlib",
    )
