"""One file through the per-file stages: read, decode, quality filters, secrets scrub, parse, stage-2
drafts, MinHash signature. A pure function of the file and the config, run in worker processes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from corpus import dedup, filters, samples, scrub
from corpus.config import CorpusConfig
from potion.elixir import analyze


def process_file(item: dict, cfg: CorpusConfig) -> dict:
    """{status: "kept" | drop reason, ...}; kept files carry text, sha, exact key, signature, samples."""
    path = Path(item["abspath"])
    try:
        size = path.stat().st_size
        if size > cfg.filters.max_bytes:
            return {"status": "too_large"}
        data = path.read_bytes()
    except OSError:
        return {"status": "unreadable"}
    text, reason = filters.decode(data)
    if text is None:
        return {"status": reason}
    reason = filters.quality(text, item["path"], cfg.filters)
    if reason:
        return {"status": reason}
    clean, found = scrub.scrub(text)
    sha = hashlib.sha256(data).hexdigest()
    result: dict = {
        "status": "kept",
        "text": clean,
        "sha": sha,
        "bytes": len(data),
        "exact": dedup.exact_key(clean),
        "minhash": dedup.signature(clean, num_perm=cfg.dedup.num_perm, shingle=cfg.dedup.shingle),
        "secrets": dict(found),
        "samples": [],
        "dropped": {},
        "parse_errors": False,
    }
    if item["path"].endswith((".ex", ".exs")):
        encoded = clean.encode("utf-8")
        analysis = analyze(encoded, path=item["path"])
        result["parse_errors"] = analysis.has_errors
        if analysis.has_errors:
            result["dropped"] = {"unparsable_file": 1}
            return result
        drafts = samples.draft_samples(
            analysis,
            encoded,
            sha=sha,
            tasks=cfg.samples.tasks,
            max_code_chars=cfg.samples.max_code_chars,
            seed=cfg.samples.seed,
        )
        key = f"{cfg.samples.seed}:{sha}"
        chosen = samples.select(drafts, cfg.samples.max_per_file, key, parsed_clean=True)
        result["samples"] = chosen.samples
        result["dropped"] = dict(chosen.dropped)
    return result
