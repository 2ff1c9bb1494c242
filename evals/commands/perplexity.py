"""`potion eval perplexity FOLDER --model A`: perplexity on a folder of Elixir files, through llama.cpp."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from potion.cli_args import add_command, arg


@dataclass
class PerplexityArgs:
    folder: Path = arg("folder of Elixir files (.ex, .exs)", positional=True)
    model: str | None = arg("registry name, .gguf path or 'base + adapter' (not a URL)", default=None)
    window: int = arg("tokens scored from the start of each file", default=512)
    max_files: int | None = arg("score at most this many files", default=None)
    threads: int = arg("llama.cpp threads", default=1)
    json_out: bool = arg("print JSON instead of a line", default=False, flag="--json")
    progress: bool = arg("show progress bars", default=True)

    def __post_init__(self) -> None:
        if not self.folder.is_dir():
            raise ValueError(f"FOLDER {self.folder} is not a folder")
        if self.window < 8:
            raise ValueError(f"--window must be at least 8 tokens, got {self.window}")
        if self.threads < 1:
            raise ValueError(f"--threads must be 1 or more, got {self.threads}")


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(subparsers, "perplexity", PerplexityArgs, run, help="perplexity on a folder of Elixir files")


def run(args: PerplexityArgs) -> int:
    from evals.models import open_model
    from evals.perplexity import elixir_files, perplexity
    from evals.progress import bars

    backend = open_model(args.model, threads=args.threads)
    try:
        with bars(args.progress) as progress:
            n = len(elixir_files(args.folder, args.max_files))
            result = perplexity(
                backend,
                args.folder,
                window_tokens=args.window,
                max_files=args.max_files,
                advance=progress("scoring", n),
            )
    finally:
        backend.close()
    if args.json_out:
        print(json.dumps(result, indent=1))
    else:
        print(
            f"perplexity {result['perplexity']:.3f} over {result['tokens']} tokens "
            f"of {len(result['files'])} files"
        )
    return 0
