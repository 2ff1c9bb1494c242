"""Docs index: every public module and function with `@moduledoc`, `@doc` and `@spec`.

`load_stdlib_index()` reads the index of Elixir's own standard library shipped in `potion/data/`
(gzip'd JSON, rebuilt with `potion docs-index build SRC`); `build_index(paths)` builds the same from any
files, which the language server does for the workspace and `deps/`. Modules with `@moduledoc false` and
functions with `@doc false` are left out: they are not public API, the way ExDoc and IEx treat them
(likewise protocol implementations and undocumented `@impl` callbacks, which Elixir hides itself).
"""

from __future__ import annotations

import functools
import gzip
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from potion.elixir.analysis import analyze
from potion.elixir.model import SourceAnalysis

FORMAT_VERSION = 1
STDLIB_INDEX = "elixir_stdlib.json.gz"
# The stdlib applications inside an Elixir source tree (lib/<app>/lib).
STDLIB_APPS = ("elixir", "eex", "ex_unit", "iex", "logger", "mix")
_SKIP_DIRS = frozenset({".git", "_build", "node_modules", ".elixir_ls", "cover", "test"})


def summary(doc: str | None) -> str | None:
    """The first paragraph of a doc, on one line (what completion lists show)."""
    if not doc:
        return None
    para = doc.strip().split("\n\n", 1)[0]
    return " ".join(para.split())


@dataclass
class FunctionDoc:
    module: str
    name: str
    min_arity: int
    arity: int
    kind: str  # "def" (functions, delegates) or "macro" (macros, guards)
    signature: str
    doc: str | None = None
    spec: str | None = None
    deprecated: str | None = None

    @property
    def arities(self) -> range:
        return range(self.min_arity, self.arity + 1)

    @property
    def summary(self) -> str | None:
        return summary(self.doc)

    @property
    def label(self) -> str:
        return f"{self.name}/{self.arity}"

    def _row(self) -> list:
        return [
            self.name,
            self.min_arity,
            self.arity,
            self.kind,
            self.signature,
            self.doc,
            self.spec,
            self.deprecated,
        ]


@dataclass
class ModuleDoc:
    name: str
    doc: str | None = None
    functions: list[FunctionDoc] = field(default_factory=list)

    @property
    def summary(self) -> str | None:
        return summary(self.doc)


class DocsIndex:
    """Lookups by module, `module.function/arity`, or a typed prefix (`Enum.ma`, `Gen`)."""

    def __init__(self, modules: dict[str, ModuleDoc] | None = None, *, source: str | None = None) -> None:
        self.modules: dict[str, ModuleDoc] = modules or {}
        self.source = source  # e.g. "elixir 1.14.0"

    def __len__(self) -> int:
        return len(self.modules)

    def module(self, name: str) -> ModuleDoc | None:
        return self.modules.get(name.removeprefix("Elixir."))

    def functions(self, module: str) -> list[FunctionDoc]:
        mod = self.module(module)
        return list(mod.functions) if mod else []

    def function(self, module: str, name: str, arity: int | None = None) -> FunctionDoc | None:
        """The function `name` of `module`; with `arity`, the one whose arity range holds it."""
        for fn in self.functions(module):
            if fn.name == name and (arity is None or arity in fn.arities):
                return fn
        return None

    def search(self, prefix: str, *, limit: int = 100) -> list[ModuleDoc | FunctionDoc]:
        """Completion candidates: `Enum.ma` -> Enum's functions starting with `ma`; `Gen` -> modules
        starting with `Gen` (and `String.` -> String's functions and its submodules)."""
        out: list[ModuleDoc | FunctionDoc] = []
        mod_part, dot, fn_part = prefix.rpartition(".")
        if dot and mod_part in self.modules and not fn_part[:1].isupper():
            out.extend(f for f in self.modules[mod_part].functions if f.name.startswith(fn_part))
        if not fn_part[:1].islower():
            out.extend(m for name, m in sorted(self.modules.items()) if name.startswith(prefix))
        return out[:limit]

    def merge(self, other: DocsIndex) -> DocsIndex:
        """A new index with `other`'s modules added (and winning on a clash: workspace over stdlib)."""
        return DocsIndex({**self.modules, **other.modules}, source=self.source)

    # -- storage ---------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "source": self.source,
            "modules": [[m.name, m.doc, [f._row() for f in m.functions]] for m in self.modules.values()],
        }

    @classmethod
    def from_json(cls, data: dict) -> DocsIndex:
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"docs index format {data.get('format')!r}, expected {FORMAT_VERSION}")
        modules: dict[str, ModuleDoc] = {}
        for name, doc, rows in data["modules"]:
            modules[name] = ModuleDoc(name, doc, [FunctionDoc(name, *row) for row in rows])
        return cls(modules, source=data.get("source"))

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False).encode()
        tmp = path.with_name(path.name + ".tmp")
        # mtime=0: the same sources give byte-identical files (a rebuild shows no spurious diff)
        with open(tmp, "wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as gz:
            gz.write(payload)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> DocsIndex:
        with gzip.open(path, "rb") as fh:
            return cls.from_json(json.loads(fh.read()))


def add_analysis(modules: dict[str, ModuleDoc], analysis: SourceAnalysis) -> None:
    """Add the public, documented-or-not (but not `@doc false`) API of one analysed file."""
    for mod in analysis.modules:
        if mod.moduledoc_hidden or mod.kind == "defimpl":  # protocol impls are not documented API
            continue
        entry = modules.get(mod.name)
        if entry is None:
            entry = modules[mod.name] = ModuleDoc(mod.name, mod.moduledoc)
        elif entry.doc is None:
            entry.doc = mod.moduledoc
        known = {(f.name, f.arity) for f in entry.functions}
        for fn in mod.functions:
            if not fn.public or fn.doc_hidden or (fn.name, fn.arity) in known:
                continue
            if fn.impl not in (None, False) and fn.doc is None:  # Elixir hides undocumented callbacks
                continue
            entry.functions.append(
                FunctionDoc(
                    module=mod.name,
                    name=fn.name,
                    min_arity=fn.arities.start,
                    arity=fn.arity,
                    kind="macro" if fn.macro else "def",
                    signature=fn.signature(),
                    doc=fn.doc,
                    spec=fn.spec,
                    deprecated=fn.deprecated,
                )
            )


def iter_sources(paths: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """`.ex` files under the given files/directories (skipping _build, .git, test/), sorted."""
    for p in paths:
        path = Path(p)
        if path.is_file():
            yield path
        elif path.is_dir():
            found = []
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
                found.extend(Path(root) / f for f in files if f.endswith(".ex"))
            yield from sorted(found)


def build_index(paths: Iterable[str | os.PathLike], *, source: str | None = None) -> DocsIndex:
    """Analyse every `.ex` file under `paths`; unreadable files are skipped (analysis never raises)."""
    modules: dict[str, ModuleDoc] = {}
    for file in iter_sources(paths):
        try:
            data = file.read_bytes()
        except OSError:
            continue
        add_analysis(modules, analyze(data, path=str(file)))
    return DocsIndex(dict(sorted(modules.items())), source=source)


def stdlib_paths(src: str | os.PathLike) -> list[Path]:
    """The stdlib `lib/<app>/lib` folders of an Elixir source tree, or `src` itself for any other tree."""
    root = Path(src)
    apps = [root / "lib" / app / "lib" for app in STDLIB_APPS if (root / "lib" / app / "lib").is_dir()]
    return apps or [root]


def stdlib_index_path() -> Path:
    return Path(str(resources.files("potion.data").joinpath(STDLIB_INDEX)))


@functools.lru_cache(maxsize=1)
def load_stdlib_index() -> DocsIndex:
    """The shipped index of Elixir's standard library (empty if the data file is missing)."""
    path = stdlib_index_path()
    if not path.is_file():
        return DocsIndex(source=None)
    return DocsIndex.load(path)
