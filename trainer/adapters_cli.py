"""`potion adapters list | show | promote | rollback`: the adapter registry from the command line."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from potion import exported, versions
from potion.cli_args import add_command, arg
from trainer import adapters


@dataclass
class ListArgs:
    json: bool = arg("one JSON object per adapter", default=False)


@dataclass
class IdArgs:
    id: str = arg(
        "adapter id (see `potion adapters list`), run directory or adapter directory", positional=True
    )


@dataclass
class ShowArgs:
    id: str | None = arg(
        "adapter id, run or adapter directory (default: the promoted one)", positional=True, default=None
    )


@dataclass
class RollbackArgs:
    pass


def _summary(r: adapters.AdapterRecord) -> str:
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in r.metrics.items() if "eval" in k and isinstance(v, float))
    mark = "*" if r.promoted else " "
    return f"{mark} {r.id:<28} {r.created:<26} {r.base['architecture']:<22} {metrics}"


def list_command(args: ListArgs) -> int:
    records = adapters.list_adapters()
    if args.json:
        for r in records:
            print(json.dumps(r.__dict__))
        return 0
    if not records:
        print("no adapters yet: `potion train --config ...` registers one when it finishes")
        return 0
    print(f"  {'ID':<28} {'CREATED':<26} {'BASE':<22} METRICS")
    for r in records:
        print(_summary(r))
    return 0


def show_command(args: ShowArgs) -> int:
    print(json.dumps(adapters.resolve(args.id).__dict__, indent=2))
    return 0


def promote_command(args: IdArgs) -> int:
    record = adapters.promote(adapters.resolve(args.id).id)
    print(f"promoted {record.id}")
    _say_default(record.id)
    return 0


def rollback_command(_args: RollbackArgs) -> int:
    record = adapters.rollback()
    print(f"promoted {record.id}" if record else "no adapter is promoted now")
    _say_default(record.id if record else None)
    return 0


def _say_default(adapter_id: str | None) -> None:
    """Which model the editor, the chat and `potion complete` use now, and how the adapter gets there."""
    stable = versions.stable()
    if adapter_id is not None and not any(
        e.name == exported.split_name(stable)[0] for e in adapters.exports_of(adapter_id)
    ):
        print(
            f"default model (stable): {stable}; `potion export` exports {adapter_id} and makes it the default"
        )
    else:
        print(f"default model (stable): {stable}")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("adapters", help="list, show, promote and roll back trained adapters")
    parser.set_defaults(func=lambda _ns: parser.print_help() or 0)
    sub = parser.add_subparsers(dest="adapters_command", metavar="ACTION")
    add_command(sub, "list", ListArgs, list_command, help="registered adapters (* = promoted)")
    add_command(sub, "show", ShowArgs, show_command, help="an adapter's sidecar: base model, metrics")
    add_command(sub, "promote", IdArgs, promote_command, help="make an adapter the default")
    add_command(sub, "rollback", RollbackArgs, rollback_command, help="restore the previously promoted one")
