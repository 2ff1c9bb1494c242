"""After the per-file stages: exact and near dedup, decontamination, the train/validation split, the
stage-1 and stage-2 rows and the manifest's numbers. Deterministic: kept files come in a fixed order."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime

from corpus import dedup
from corpus.config import CorpusConfig
from corpus.decontam import Benchmark, contaminated
from corpus.state import State
from corpus.tokenizers import Tokenizer

MANIFEST_VERSION = 1
_WORDS = re.compile(r"\w+|[^\w\s]")


def split_of(project: str, cfg: CorpusConfig) -> str:
    """`validation` for held-out projects (named in full or by their last part, e.g. `mix`), or for a
    stable hash-chosen fraction of the others; never by file."""
    short = project.rsplit("/", 1)[-1]
    if project in cfg.split.validation_projects or short in cfg.split.validation_projects:
        return "validation"
    if cfg.split.validation_fraction > 0:
        bucket = int(hashlib.sha256(project.encode()).hexdigest()[:8], 16) / 0x1_0000_0000
        if bucket < cfg.split.validation_fraction:
            return "validation"
    return "train"


def _provenance(f: dict) -> dict:
    return {k: f[k] for k in ("source", "license", "path", "sha", "project")}


def _with_neighbours(files: list[dict], n: int) -> list[str]:
    """Stage-1 text: each file, after up to `n` earlier files of the same folder and project."""
    if n <= 0:
        return [f["text"] for f in files]
    texts = []
    recent: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for f in files:
        key = (f["project"], f["path"].rsplit("/", 1)[0])
        context = "".join(f"# {p['path']}\n{p['text']}\n" for p in recent[key][-n:])
        texts.append(context + (f"# {f['path']}\n" if context else "") + f["text"])
        recent[key].append(f)
    return texts


def count_tokens(texts: list[str], tokenizer: Tokenizer | None) -> int:
    """Tokens with the configured tokenizer, or regex words when there is none."""
    if tokenizer is not None:
        return sum(len(tokenizer.encode(t)) for t in texts)
    return sum(len(_WORDS.findall(t)) for t in texts)


def assemble(
    cfg: CorpusConfig,
    state: State,
    benches: list[Benchmark],
    *,
    tokenizer: Tokenizer | None = None,
    log: Callable[[str], None] = print,
) -> tuple[dict, dict]:
    """(rows per stage and split, manifest without `files`) from the work state."""
    statuses = state.status_counts()
    files = list(state.kept())
    kept_total = len(files)

    exact_seen: dict[str, str] = {}
    unique = []
    for f in files:
        if f["exact"] in exact_seen:
            continue
        exact_seen[f["exact"]] = f["path"]
        unique.append(f)
    exact_dupes = kept_total - len(unique)
    near = dedup.near_duplicates(
        ((f"{f['source']}\0{f['path']}", f["minhash"]) for f in unique),
        num_perm=cfg.dedup.num_perm,
        threshold=cfg.dedup.threshold,
    )
    distinct = [f for f in unique if f"{f['source']}\0{f['path']}" not in near]
    log(f"dedup: {exact_dupes} exact and {len(near)} near duplicates of {kept_total} files")

    decontam = {
        b.name: {"path": b.path, "rows": b.rows, "stage1_files": 0, "stage2_samples": 0} for b in benches
    }
    clean_files = []
    for f in distinct:
        hit = contaminated(benches, f["text"], cfg.decontaminate.ngram)
        for name in hit:
            decontam[name]["stage1_files"] += 1
        if not hit:
            clean_files.append(f)

    stage1: dict[str, list[dict]] = {"train": [], "validation": []}
    stage2: dict[str, list[dict]] = {"train": [], "validation": []}
    seen_samples: set[str] = set()
    tasks: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    secrets: Counter[str] = Counter()
    licenses: Counter[str] = Counter()
    projects: dict[str, set[str]] = {"train": set(), "validation": set()}
    for f, text in zip(clean_files, _with_neighbours(clean_files, cfg.samples.neighbours), strict=True):
        split = split_of(f["project"], cfg)
        projects[split].add(f["project"])
        stage1[split].append({"text": text, **_provenance(f)})
        secrets.update(f["secrets"])
        licenses[f["license"]] += 1
        dropped.update(f["dropped"])
        for s in f["samples"]:
            key = hashlib.sha256(json.dumps(s["messages"]).encode()).hexdigest()
            if key in seen_samples:
                dropped["duplicate"] += 1
                continue
            seen_samples.add(key)
            body = "\n".join(m["content"] for m in s["messages"][1:])
            hit = contaminated(benches, body, cfg.decontaminate.ngram)
            for name in hit:
                decontam[name]["stage2_samples"] += 1
            if hit:
                dropped["decontaminated"] += 1
                continue
            tasks[s["task"]] += 1
            stage2[split].append({"messages": s["messages"], "task": s["task"], **_provenance(f)})

    tokens = {
        "tokenizer": tokenizer.name if tokenizer is not None else "regex-words",
        "stage1": {s: count_tokens([r["text"] for r in rows], tokenizer) for s, rows in stage1.items()},
        "stage2": {
            s: count_tokens([m["content"] for r in rows for m in r["messages"]], tokenizer)
            for s, rows in stage2.items()
        },
    }
    quality = {k: v for k, v in statuses.items() if k not in ("kept", "license_excluded", "pending")}
    counts = {
        "files_seen": sum(statuses.values()),
        "license_excluded": statuses.get("license_excluded", 0),
        "dropped": quality,
        "after_filters": kept_total,
        "exact_duplicates": exact_dupes,
        "near_duplicates": len(near),
        "decontaminated": kept_total - exact_dupes - len(near) - len(clean_files),
        "stage1": {s: len(r) for s, r in stage1.items()},
        "stage2": {s: len(r) for s, r in stage2.items()},
    }
    manifest = {
        "version": MANIFEST_VERSION,
        "name": cfg.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "sources": [s for s in state.sources() if not s.get("config")],
        "skipped_sources": [k for s in state.sources() if s.get("config") for k in s.get("skipped", [])],
        "counts": counts,
        "dedup": {
            "num_perm": cfg.dedup.num_perm,
            "shingle": cfg.dedup.shingle,
            "threshold": cfg.dedup.threshold,
            "exact_ratio": round(exact_dupes / kept_total, 4) if kept_total else 0.0,
            "near_ratio": round(len(near) / max(1, len(unique)), 4),
        },
        "licenses": dict(sorted(licenses.items())),
        "licenses_excluded": state.excluded_licenses(),
        "secrets": dict(sorted(secrets.items())),
        "decontamination": decontam,
        "stage2": {"tasks": dict(sorted(tasks.items())), "dropped": dict(sorted(dropped.items()))},
        "split": {
            "validation_projects": sorted(projects["validation"]),
            "projects": {s: len(p) for s, p in projects.items()},
        },
        "tokens": tokens,
    }
    return {"stage1": stage1, "stage2": stage2}, manifest
