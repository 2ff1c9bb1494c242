"""`potion corpus build`: sources -> per-file stages (in worker processes) -> dedup, decontamination,
split -> parquet + manifest.

Guarantees: a build killed at any point resumes from its SQLite work state (`.OUT.work/` beside the
output) without redoing or duplicating finished files, and gives the same output as an uninterrupted
build; the output folder appears under its final name only when complete.
"""

from __future__ import annotations

import multiprocessing
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from corpus import licenses, output
from corpus.assemble import assemble
from corpus.config import CorpusConfig
from corpus.decontam import Benchmark, default_suites, load_benchmark, repo_root
from corpus.process import process_file
from corpus.sources.fetch import fetch
from corpus.sources.local import collect
from corpus.state import State
from corpus.tokenizers import load_tokenizer

BATCH = 64
_worker_cfg: CorpusConfig | None = None


def work_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.work"


def cache_dir(cfg: CorpusConfig) -> Path:
    if cfg.cache:
        return Path(cfg.cache)
    from potion.settings import cache_dir as potion_cache

    return potion_cache() / "corpus"


def benchmarks(cfg: CorpusConfig, extra: list[Path] = ()) -> list[Benchmark]:  # type: ignore[assignment]
    paths = list(default_suites(repo_root())) if cfg.decontaminate.suites else []
    paths += [Path(p) for p in cfg.decontaminate.files] + list(extra)
    seen: set[Path] = set()
    out = []
    for p in paths:
        if p.resolve() in seen:
            continue
        seen.add(p.resolve())
        out.append(
            load_benchmark(p, n=cfg.decontaminate.ngram, min_substring=cfg.decontaminate.min_substring)
        )
    return out


def _init_worker(cfg: CorpusConfig) -> None:
    global _worker_cfg
    _worker_cfg = cfg


def _work(item: dict) -> tuple[int, dict]:
    assert _worker_cfg is not None
    return item["id"], process_file(item, _worker_cfg)


def _results(pending: list[dict], cfg: CorpusConfig, workers: int) -> Iterator[tuple[int, dict]]:
    if workers <= 1:
        for item in pending:
            yield item["id"], process_file(item, cfg)
        return
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(cfg,)) as pool:
        yield from pool.map(_work, pending, chunksize=max(1, min(32, len(pending) // (workers * 8) or 1)))


def collect_sources(cfg: CorpusConfig, state: State, log: Callable[[str], None]) -> None:
    """Fetch and list every source not yet collected; each source's files land in one transaction."""
    cache = cache_dir(cfg)
    for src in cfg.sources:
        if state.source_info(f"config:{src.label}") is not None:
            continue
        units, skipped = fetch(src, cache)
        for skip in skipped:
            log(f"{skip['label']}: skipped ({skip['reason']})")
        for unit in units:
            if state.source_info(unit.label) is not None:
                continue
            items = collect(
                unit.root,
                label=unit.label,
                extensions=cfg.filters.extensions,
                include=unit.include,
                exclude=unit.exclude,
                license_override=src.license,
                default_license=unit.license,
                dep5=unit.dep5,
            )
            allow, unknown_ok = cfg.licenses.allow, cfg.licenses.unknown == "include"
            gated = [
                (f, None if licenses.allowed(f.license, allow, unknown_ok=unknown_ok) else "license_excluded")
                for f in items
            ]
            info = {
                "label": unit.label,
                "kind": src.kind,
                "root": str(unit.root),
                "version": unit.version,
                "license": unit.license,
                "files": len(items),
                **unit.info,
            }
            state.add_source(unit.label, info, gated)
            log(f"{unit.label}: {len(items)} files" + (f" ({unit.version})" if unit.version else ""))
        info = {"label": f"config:{src.label}", "config": True, "skipped": skipped}
        state.add_source(f"config:{src.label}", info, [])


def process_pending(state: State, cfg: CorpusConfig, workers: int, progress: bool) -> None:
    pending = state.pending()
    if not pending:
        return
    batch: list[tuple[int, dict]] = []
    bar = tqdm(total=len(pending), desc="files", unit="file", disable=not progress, dynamic_ncols=True)
    with bar:
        for result in _results(pending, cfg, workers):
            batch.append(result)
            bar.update(1)
            if len(batch) >= BATCH:
                state.record(batch)
                batch.clear()
        state.record(batch)


def build(
    cfg: CorpusConfig,
    out: Path,
    *,
    workers: int | None = None,
    force: bool = False,
    keep_work: bool = False,
    progress: bool = True,
    extra_benchmarks: list[Path] = (),  # type: ignore[assignment]
    log: Callable[[str], None] = print,
) -> dict:
    """Build (or resume building) the corpus `cfg` describes into `out`; returns the manifest."""
    started = time.perf_counter()
    out = out.resolve()
    output.check_target(out, force=force)
    benches = benchmarks(cfg, list(extra_benchmarks))  # bad benchmark files fail before any work
    tokenizer = load_tokenizer(cfg.tokenizer) if cfg.tokenizer else None  # so does a bad tokenizer
    state = State(work_dir(out) / "state.sqlite", cfg.fingerprint())
    try:
        if state.resumed:
            log(f"resuming from {state.path}")
        collect_sources(cfg, state, log)
        process_pending(state, cfg, workers or cfg.workers, progress)
        rows, manifest = assemble(cfg, state, benches, tokenizer=tokenizer, log=log)
        manifest["config"] = asdict(cfg)
        manifest["wall_s"] = round(time.perf_counter() - started, 2)
        output.write(out, rows, manifest, force=force, progress=progress)
    finally:
        state.close()
    if not keep_work:
        shutil.rmtree(work_dir(out), ignore_errors=True)
    return manifest
