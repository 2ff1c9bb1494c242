"""The corpus YAML (`potion corpus build --config corpus.yaml`): one dataclass per section.

    name: elixir-default
    sources:
      - {kind: debian, name: elixir-lang, include: ["lib/*/lib/**"]}
      - {kind: dir, path: tests/fixtures/mix_project}
      - {kind: hex, top: 100}
      - {kind: github, query: "language:Elixir", min_stars: 50, created: [2015-01-01, 2024-12-31]}
    licenses: {allow: [MIT, Apache-2.0], unknown: exclude}
    split: {validation_projects: [mix], validation_fraction: 0.0}

Unknown keys are errors (a typo must not silently fall back to a default). Relative paths are resolved
against the YAML's folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from corpus.errors import ConfigError

PERMISSIVE = (
    "MIT",
    "Apache-2.0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "0BSD",
    "Unlicense",
    "CC0-1.0",
    "Zlib",
    "BSL-1.0",
    "X11",
)
SOURCE_KINDS = ("dir", "debian", "hex", "github")
TASKS = ("doc_to_impl", "impl_to_doc", "doctest_to_fn", "behaviour_to_module", "explain")


@dataclass
class SourceConfig:
    kind: str
    path: str | None = None  # dir
    name: str | None = None  # debian package, or a label for a dir
    include: list[str] = field(default_factory=list)  # globs relative to the source root; empty = all
    exclude: list[str] = field(default_factory=list)
    license: str | None = None  # override (SPDX) for the whole source
    top: int = 50  # hex: top N packages by recent downloads
    packages: list[str] = field(default_factory=list)  # hex: explicit names instead of top N
    query: str = "language:Elixir"  # github
    min_stars: int = 10
    created: list[str] = field(default_factory=lambda: ["2011-01-01", "2025-12-31"])
    max_repos: int = 100
    url: str | None = None  # hex API / GitHub API base (tests point these at 127.0.0.1)
    repo_url: str | None = None  # hex repository base (tarballs)

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ConfigError(
                f"source kind {self.kind!r} is unknown", hint=f"use one of {', '.join(SOURCE_KINDS)}"
            )
        if self.kind == "dir" and not self.path:
            raise ConfigError("a `dir` source needs `path`", hint="add path: FOLDER to the source")
        if self.kind == "debian" and not self.name:
            raise ConfigError("a `debian` source needs `name`", hint="add name: PACKAGE (e.g. elixir-lang)")

    @property
    def label(self) -> str:
        if self.kind == "dir":
            return f"dir:{self.name or Path(self.path or '.').name}"
        if self.kind == "debian":
            return f"debian:{self.name}"
        return f"{self.kind}:{self.name or (self.query if self.kind == 'github' else 'top')}"


@dataclass
class LicenseConfig:
    allow: list[str] = field(default_factory=lambda: list(PERMISSIVE))
    unknown: str = "exclude"  # or "include"

    def __post_init__(self) -> None:
        if self.unknown not in ("exclude", "include"):
            raise ConfigError(f"licenses.unknown is {self.unknown!r}", hint="use exclude or include")


@dataclass
class FilterConfig:
    extensions: list[str] = field(default_factory=lambda: [".ex", ".exs"])
    min_chars: int = 64
    max_bytes: int = 1_000_000
    max_line_length: int = 1000
    max_mean_line_length: int = 100
    min_alpha_fraction: float = 0.25
    max_data_fraction: float = 0.6  # lines that are only literals/punctuation (tables, fixtures)
    skip_tests: bool = False


@dataclass
class DedupConfig:
    num_perm: int = 256
    shingle: int = 5
    threshold: float = 0.7


@dataclass
class SplitConfig:
    validation_projects: list[str] = field(default_factory=list)
    validation_fraction: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError("split.validation_fraction must be in [0, 1)", hint="e.g. 0.05")


@dataclass
class DecontamConfig:
    suites: bool = True  # evals/suites/*.jsonl when present
    files: list[str] = field(default_factory=list)
    ngram: int = 13
    min_substring: int = 40  # shorter benchmark strings are too common to mean contamination


@dataclass
class SampleConfig:
    tasks: list[str] = field(default_factory=lambda: list(TASKS))
    max_per_file: int = 24
    max_code_chars: int = 6000
    seed: int = 0
    neighbours: int = 0  # stage 1: prepend up to N files of the same folder as context


@dataclass
class CorpusConfig:
    name: str = "corpus"
    sources: list[SourceConfig] = field(default_factory=list)
    licenses: LicenseConfig = field(default_factory=LicenseConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    decontaminate: DecontamConfig = field(default_factory=DecontamConfig)
    samples: SampleConfig = field(default_factory=SampleConfig)
    cache: str | None = None  # fetched sources; default: potion's cache dir / corpus
    tokenizer: str | None = None  # model for the manifest's token counts; None = regex word count
    workers: int = 2

    def fingerprint(self) -> str:
        """Stable hash of everything that changes the output (work state is thrown away when it moves)."""
        data = dataclasses.asdict(self)
        data.pop("workers")
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


_SECTIONS = {
    "licenses": LicenseConfig,
    "filters": FilterConfig,
    "dedup": DedupConfig,
    "split": SplitConfig,
    "decontaminate": DecontamConfig,
    "samples": SampleConfig,
}


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}", hint="fix the YAML")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}", hint=f"valid keys: {', '.join(sorted(names))}"
        )
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}", hint="fix the YAML") from exc


def parse_config(data: dict, *, base: Path | None = None) -> CorpusConfig:
    """A CorpusConfig from parsed YAML; `base` resolves relative `dir` paths and file lists."""
    if not isinstance(data, dict):
        raise ConfigError(
            "the corpus config must be a mapping", hint="see configs/corpus/elixir-default.yaml"
        )
    data = dict(data)
    sources = []
    for i, src in enumerate(data.pop("sources", None) or []):
        cfg = _build(SourceConfig, src, f"sources[{i}]")
        if cfg.path and base is not None and not Path(cfg.path).is_absolute():
            cfg.path = str((base / cfg.path).resolve())
        sources.append(cfg)
    sections = {key: _build(cls, data.pop(key), key) for key, cls in _SECTIONS.items() if key in data}
    cfg = _build(CorpusConfig, data, "config")
    cfg.sources = sources
    for key, value in sections.items():
        setattr(cfg, key, value)
    if not cfg.sources:
        raise ConfigError("the config has no sources", hint="add at least one entry under sources:")
    if base is not None:
        files = cfg.decontaminate.files
        cfg.decontaminate.files = [
            str((base / f).resolve()) if not Path(f).is_absolute() else f for f in files
        ]
    unknown_tasks = sorted(set(cfg.samples.tasks) - set(TASKS))
    if unknown_tasks:
        raise ConfigError(
            f"samples.tasks: unknown {', '.join(unknown_tasks)}", hint=f"use {', '.join(TASKS)}"
        )
    return cfg


def load_config(path: Path) -> CorpusConfig:
    """Read and validate a corpus YAML."""
    if not path.is_file():
        raise ConfigError(f"config {path} does not exist", hint="pass --config FILE.yaml")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})", hint="fix the YAML syntax") from exc
    return parse_config(data or {}, base=path.parent)
