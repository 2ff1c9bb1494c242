"""Markdown tables and PNG charts of evaluation results (base vs tuned, ablations)."""

from __future__ import annotations

from pathlib import Path

from evals.sandbox import OUTCOMES


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def suite_markdown(result: dict) -> str:
    s = result["summary"]
    ks = [key for key in s if key.startswith("pass@")]
    lines = [
        f"## {result['suite']} on {result['model'] or 'the default model'}",
        "",
        f"{s['tasks']} tasks, {s['samples']} samples; "
        + ", ".join(f"{k} {_pct(s[k])}" for k in ks)
        + f"; compile rate {_pct(s['compile_rate'])}; "
        f"{s['generation_seconds_per_sample']:.2f} s generation and "
        f"{s['seconds_per_sample']:.2f} s sandbox per sample",
        "",
        "| category | tasks | " + " | ".join(ks) + " | compile | " + " | ".join(OUTCOMES) + " |",
        "|---|---:|" + "---:|" * (len(ks) + 1 + len(OUTCOMES)),
    ]
    for name, c in s["categories"].items():
        cells = [name, str(c["tasks"]), *(_pct(c[k]) for k in ks), _pct(c["compile_rate"])]
        cells += [_pct(c["outcomes"][o]) for o in OUTCOMES]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _task_pass(result: dict) -> dict[str, float]:
    out: dict[str, list[bool]] = {}
    for row in result["rows"]:
        out.setdefault(row["task"], []).append(row["status"] == "pass")
    return {t: sum(v) / len(v) for t, v in out.items()}


def _task_status(result: dict) -> dict[str, str]:
    return {row["task"]: row["status"] for row in result["rows"] if row["sample"] == 0}


def compare_markdown(base: dict, tuned: dict, chart: str | None = None) -> str:
    sb, st = base["summary"], tuned["summary"]
    ks = [key for key in sb if key.startswith("pass@") and key in st]
    lines = [
        f"# {base['suite']}: {base['model'] or 'default'} (base) vs {tuned['model'] or 'default'} (tuned)",
        "",
        f"Measured at commit {tuned.get('commit') or '?'}; settings {tuned['settings']}.",
        "",
        "| metric | base | tuned | change |",
        "|---|---:|---:|---:|",
    ]
    for metric in [*ks, "compile_rate"]:
        lines.append(
            f"| {metric} | {_pct(sb[metric])} | {_pct(st[metric])} | "
            f"{100 * (st[metric] - sb[metric]):+.1f} pts |"
        )
    for o in OUTCOMES:
        lines.append(
            f"| {o} | {_pct(sb['outcomes'][o])} | {_pct(st['outcomes'][o])} | "
            f"{100 * (st['outcomes'][o] - sb['outcomes'][o]):+.1f} pts |"
        )
    if chart:
        lines += ["", f"![pass rate per category]({chart})"]
    lines += ["", "## Per category", "", "| category | base | tuned | change |", "|---|---:|---:|---:|"]
    main = ks[0] if ks else None
    for cat, cb in sb["categories"].items():
        ct = st["categories"].get(cat)
        if ct is None or main is None:
            continue
        lines.append(
            f"| {cat} | {_pct(cb[main])} | {_pct(ct[main])} | {100 * (ct[main] - cb[main]):+.1f} pts |"
        )
    pb, pt = _task_pass(base), _task_pass(tuned)
    stb, stt = _task_status(base), _task_status(tuned)
    changed = [t for t in pb if t in pt and pb[t] != pt[t]]
    lines += ["", f"## Tasks that changed ({len(changed)})", ""]
    if changed:
        lines += ["| task | base | tuned |", "|---|---|---|"]
        for t in sorted(changed, key=lambda t: (pt[t] - pb[t], t)):
            lines.append(f"| {t} | {stb.get(t, '?')} ({_pct(pb[t])}) | {stt.get(t, '?')} ({_pct(pt[t])}) |")
    else:
        lines.append("No task changed.")
    return "\n".join(lines) + "\n"


def compare_chart(base: dict, tuned: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sb, st = base["summary"], tuned["summary"]
    key = next(k for k in sb if k.startswith("pass@"))
    cats = [c for c in sb["categories"] if c in st["categories"]]
    xs = range(len(cats))
    fig, ax = plt.subplots(figsize=(max(6, len(cats) * 0.8), 4))
    ax.bar([x - 0.2 for x in xs], [sb["categories"][c][key] for c in cats], 0.4, label="base")
    ax.bar([x + 0.2 for x in xs], [st["categories"][c][key] for c in cats], 0.4, label="tuned")
    ax.set_xticks(list(xs), cats, rotation=35, ha="right")
    ax.set_ylabel(key)
    ax.set_ylim(0, 1)
    ax.set_title(f"{base['suite']}: {key} per category")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def ablation_markdown(summary: dict[str, dict], *, baseline: str, title: str) -> str:
    base = summary[baseline]
    lines = [
        f"### {title}",
        "",
        "| variant | items | exact match | edit similarity | vs plain | compiles | s/item (median) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in summary.items():
        ratio = s["edit_similarity"] / base["edit_similarity"] if base["edit_similarity"] else float("nan")
        compiles = _pct(s["compile_rate"]) if "compile_rate" in s else "-"
        lines.append(
            f"| {name} | {s['items']} | {_pct(s['exact_match'])} | "
            f"{s['edit_similarity']:.3f} | {ratio:.2f}x | "
            f"{compiles} | {s['seconds_median']:.2f} |"
        )
    return "\n".join(lines) + "\n"
