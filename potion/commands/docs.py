"""`potion docs-index build SRC [-o OUT]`: rebuild the Elixir docs index from a source tree."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from potion.cli_args import add_command, arg
from potion.errors import InvalidSource


@dataclass
class BuildArgs:
    """The flags of `potion docs-index build`."""

    src: Path = arg("Elixir source tree (lib/*/lib) or a folder of .ex files", positional=True, metavar="SRC")
    out: Path | None = arg("output .json.gz (default: the shipped index)", default=None, short="-o")

    def __post_init__(self) -> None:
        if not self.src.exists():
            raise InvalidSource(f"SRC {self.src} does not exist", hint="give an Elixir source tree or folder")
        if self.out is not None and self.out.is_dir():
            raise ValueError(f"-o/--out {self.out} is a directory: give a file name ending in .json.gz")


def build(args: BuildArgs) -> int:
    from potion.elixir import docs

    started = time.perf_counter()
    paths = docs.stdlib_paths(args.src)
    if not any(True for _ in docs.iter_sources(paths)):
        raise InvalidSource(f"no .ex files under {args.src}", hint="point SRC at an Elixir source tree")
    version_file = args.src / "VERSION"
    source = f"elixir {version_file.read_text().strip()}" if version_file.is_file() else str(args.src)
    index = docs.build_index(paths, source=source)
    out = index.save(args.out or docs.stdlib_index_path())
    functions = sum(len(m.functions) for m in index.modules.values())
    print(
        f"{len(index)} modules, {functions} functions from {source} -> {out} "
        f"({out.stat().st_size / 1024:.0f} KiB, {time.perf_counter() - started:.1f}s)"
    )
    docs.load_stdlib_index.cache_clear()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("docs-index", help="build the Elixir docs index used by hover/completion")
    sub = parser.add_subparsers(dest="docs_command", metavar="ACTION")
    add_command(
        sub,
        "build",
        BuildArgs,
        build,
        help="rebuild the index from an Elixir source tree (or any folder of .ex)",
    )
    parser.set_defaults(func=lambda ns: parser.print_help() or 0)
