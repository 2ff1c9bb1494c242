"""Run a task suite on a model: generate completions through `potion.backends`, run each program in the
sandbox, summarize (pass@k, compile rate, outcomes per category, latency), store the result."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

from evals import models
from evals.metrics import summarize_tasks
from evals.sandbox import Sandbox
from evals.store import ResultStore, key
from evals.tasks import Suite
from potion.backends import Backend

Progress = Callable[[str, int], Callable[[int], None]]  # (label, total) -> advance(n)


@dataclass(frozen=True)
class GenerationConfig:
    samples: int = 1  # completions per task (n of pass@k)
    temperature: float = 0.0  # 0: greedy
    max_tokens: int = 384
    ks: tuple[int, ...] = (1,)


def _no_progress(_label: str, _total: int) -> Callable[[int], None]:
    return lambda _n: None


def generate(
    backend: Backend, suite: Suite, config: GenerationConfig, progress: Progress = _no_progress
) -> list[dict]:
    """One row per (task, sample): the raw output, the completion cut from it, generation seconds."""
    rows = []
    advance = progress("generating", len(suite.tasks) * config.samples)
    for task in suite.tasks:
        for sample in range(config.samples):
            started = time.perf_counter()
            raw = "".join(
                backend.complete(
                    task.prompt,
                    max_tokens=config.max_tokens,
                    stop=list(task.stop_tokens),
                    temperature=config.temperature,
                )
            )
            rows.append(
                {
                    "task": task.name,
                    "category": task.category,
                    "sample": sample,
                    "raw": raw,
                    "completion": task.cut(raw),
                    "gen_seconds": time.perf_counter() - started,
                }
            )
            advance(1)
    return rows


def execute(
    suite: Suite, rows: list[dict], sandbox: Sandbox, progress: Progress = _no_progress
) -> list[dict]:
    """Run every row's program, each alone in the sandbox, in parallel; adds status/detail/seconds."""
    tasks = {t.name: t for t in suite.tasks}
    programs = [tasks[r["task"]].program(r["completion"]) for r in rows]
    advance = progress("running in the sandbox", len(programs))
    outcomes = sandbox.run_many(programs, on_done=lambda _i, _o: advance(1))
    for row, outcome in zip(rows, outcomes, strict=True):
        row.update(status=outcome.status, detail=outcome.detail, seconds=outcome.seconds)
    return rows


def evaluate(
    spec: str | None,
    suite: Suite,
    config: GenerationConfig,
    *,
    sandbox: Sandbox,
    store: ResultStore,
    rerun: bool = False,
    progress: Progress = _no_progress,
    backend: Backend | None = None,
) -> dict:
    """The stored result of `spec` on `suite` with `config`, measuring it first when there is none."""
    settings = dataclasses.asdict(config)
    name = f"{models.slug(spec)}-{key(suite.digest, models.identity(spec), settings)}"
    if not rerun and (stored := store.load(f"suite-{suite.name}", name)) is not None:
        stored.update(reused=True, path=str(store.path(f"suite-{suite.name}", name)))
        return stored
    own = backend is None
    backend = backend or models.open_model(spec)
    try:
        rows = generate(backend, suite, config, progress)
    finally:
        if own:
            backend.close()
    execute(suite, rows, sandbox, progress)
    document = {
        "kind": "suite",
        "suite": suite.name,
        "suite_digest": suite.digest,
        "model": spec,
        "settings": settings,
        "sandbox": dataclasses.asdict(sandbox.limits) | {"isolation": dataclasses.asdict(sandbox.isolation)},
        "summary": summarize_tasks(rows, config.ks),
        "rows": rows,
    }
    document["path"] = str(store.save(f"suite-{suite.name}", name, document))
    document["reused"] = False
    return document
