"""`potion corpus stats DIR`: the manifest as tables (counts per stage, licences, secrets, dedup)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from potion.cli_args import add_command, arg


@dataclass
class StatsArgs:
    dir: Path = arg("a built corpus folder", positional=True)
    json: bool = arg("print the manifest as JSON", default=False)
    verify: bool = arg("check every file's sha256 against the manifest", default=True)


def summary_lines(m: dict) -> list[str]:
    c = m["counts"]
    return [
        f"files: {c['files_seen']} seen, {c['license_excluded']} licence-excluded, "
        f"{sum(c['dropped'].values())} filtered, {c['exact_duplicates']} exact + {c['near_duplicates']} near "
        f"duplicates, {c['decontaminated']} decontaminated",
        f"stage1: {c['stage1']['train']} train / {c['stage1']['validation']} validation files; "
        f"stage2: {c['stage2']['train']} train / {c['stage2']['validation']} validation samples",
    ]


def tables(m: dict) -> list:
    from rich.table import Table

    def table(title: str, rows: dict, *, key: str = "", value: str = "count") -> Table:
        t = Table(title=title, title_justify="left")
        t.add_column(key or title)
        t.add_column(value, justify="right")
        for k, v in rows.items():
            t.add_row(str(k), str(v))
        return t

    c = m["counts"]
    stages = {
        "files seen": c["files_seen"],
        "licence excluded": c["license_excluded"],
        **{f"dropped: {k}": v for k, v in c["dropped"].items()},
        "after filters": c["after_filters"],
        "exact duplicates": c["exact_duplicates"],
        "near duplicates": c["near_duplicates"],
        "decontaminated": c["decontaminated"],
        "stage1 train / validation": f"{c['stage1']['train']} / {c['stage1']['validation']}",
        "stage2 train / validation": f"{c['stage2']['train']} / {c['stage2']['validation']}",
    }
    tok = m.get("tokens", {})
    out = [
        table("counts per stage", stages, key="stage"),
        table(
            "sources",
            {s["label"]: f"{s['files']} files {s.get('version') or ''}".strip() for s in m["sources"]},
        ),
        table("licences (kept files)", m["licenses"], key="licence"),
        table("licences excluded", m.get("licenses_excluded", {}), key="licence"),
        table("secrets removed", m["secrets"] or {"none": 0}, key="kind"),
        table("stage-2 tasks", m["stage2"]["tasks"], key="task"),
        table("stage-2 dropped", m["stage2"]["dropped"] or {"none": 0}, key="reason"),
        table("dedup", {k: v for k, v in m["dedup"].items()}, key="setting", value="value"),
        table(
            f"tokens ({tok.get('tokenizer', '?')})",
            {f"{s} {sp}": n for s in ("stage1", "stage2") for sp, n in tok.get(s, {}).items()},
            key="split",
        ),
    ]
    if m.get("decontamination"):
        out.append(
            table(
                "decontamination",
                {
                    k: f"{v['stage1_files']} files, {v['stage2_samples']} samples"
                    for k, v in m["decontamination"].items()
                },
                key="benchmark",
                value="removed",
            )
        )
    return out


def run(args: StatsArgs) -> int:
    from rich.console import Console

    from corpus.errors import NotACorpus
    from corpus.output import read_manifest, verify

    manifest = read_manifest(args.dir)
    if args.json:
        print(json.dumps(manifest, indent=2))
        return 0
    console = Console()
    console.print(
        f"[bold]{manifest['name']}[/bold] built {manifest['created']} in {manifest.get('wall_s', '?')}s"
    )
    for t in tables(manifest):
        console.print(t)
    if args.verify:
        bad = verify(args.dir)
        if bad:
            raise NotACorpus(f"{args.dir}: sha256 mismatch for {', '.join(bad)}", hint="rebuild the corpus")
        console.print(f"all {len(manifest['files'])} files match their sha256")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "stats", StatsArgs, run, help="print a built corpus's manifest as tables")
