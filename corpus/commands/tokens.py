"""`potion corpus tokens --model NAME_OR_TOKENIZER DIR`: how a tokenizer splits the corpus's Elixir."""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path

from potion.cli_args import add_command, arg


@dataclass
class TokensArgs:
    dir: Path = arg("a built corpus folder", positional=True)
    model: str = arg("registry name, .gguf path, `tekken`, or a tekken*.json", default="qwen2.5-coder-0.5b")
    max_files: int = arg("stage-1 files to measure", default=300)
    json: bool = arg("print the report as JSON (last line)", default=False)

    def __post_init__(self) -> None:
        if self.max_files < 1:
            raise ValueError(f"--max-files must be at least 1, got {self.max_files}")


def run(args: TokensArgs) -> int:
    import pyarrow.parquet as pq

    from corpus.output import read_manifest
    from corpus.schema import split_path
    from corpus.tokenizers import load_tokenizer
    from corpus.tokens import markdown, measure

    read_manifest(args.dir)
    texts = []
    for split in ("train", "validation"):
        table = pq.read_table(split_path(args.dir, "stage1", split), columns=["text", "path"]).to_pydict()
        texts += [t for t, p in zip(table["text"], table["path"], strict=True) if p.endswith((".ex", ".exs"))]
    texts = texts[: args.max_files]
    report = measure(load_tokenizer(args.model), texts)
    slug = re.sub(r"[^\w.-]+", "-", report["tokenizer"].replace(".json", "")).strip("-")
    md = markdown(report)
    (args.dir / f"tokens-{slug}.md").write_text(md)
    (args.dir / f"tokens-{slug}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report) if args.json else md)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "tokens", TokensArgs, run, help="report how a tokenizer splits Elixir, per construct")
