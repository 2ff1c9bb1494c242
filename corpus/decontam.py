"""Decontamination against evaluation tasks and benchmark JSONL: exact substrings and 13-gram overlap.

Every string field of every row of a benchmark file is a needle (prompts, tests, canonical solutions).
A record is contaminated by a benchmark when it contains one of its strings (of at least
`min_substring` characters, whitespace-normalised) or shares one whitespace-token 13-gram with it.
Counts are reported per benchmark.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from corpus.errors import ConfigError

_WS = re.compile(r"\s+")
_TOKEN = re.compile(r"\w+|[^\w\s]")


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    tokens = _TOKEN.findall(text)
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


@dataclass
class Benchmark:
    name: str
    path: str
    substrings: list[str] = field(default_factory=list)
    ngrams: set[tuple[str, ...]] = field(default_factory=set)
    rows: int = 0

    def hits(self, flat: str, grams: set[tuple[str, ...]]) -> bool:
        return any(s in flat for s in self.substrings) or not self.ngrams.isdisjoint(grams)


def contaminated(benches: list[Benchmark], text: str, n: int) -> list[str]:
    """Names of the benchmarks `text` overlaps (its n-grams computed once for all of them)."""
    if not benches:
        return []
    flat = _WS.sub(" ", text)
    grams = _ngrams(text, n)
    return [b.name for b in benches if b.hits(flat, grams)]


def load_benchmark(path: Path, *, n: int = 13, min_substring: int = 40) -> Benchmark:
    """A benchmark from a JSONL file (one JSON object per line)."""
    if not path.is_file():
        raise ConfigError(
            f"benchmark {path} does not exist", hint="check --decontaminate / decontaminate.files"
        )
    bench = Benchmark(name=path.stem, path=str(path))
    seen: set[str] = set()
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{i}: not JSON ({exc.msg})", hint="benchmarks are JSONL") from exc
        bench.rows += 1
        for s in _strings(row):
            flat = _WS.sub(" ", s).strip()
            if len(flat) >= min_substring and flat not in seen:
                seen.add(flat)
                bench.substrings.append(flat)
            bench.ngrams |= _ngrams(s, n)
    return bench


def default_suites(root: Path) -> list[Path]:
    """The project's own evaluation suites (`evals/suites/*.jsonl`), when present."""
    return sorted((root / "evals" / "suites").glob("*.jsonl"))


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
