"""Command-line flags derived from an argument dataclass: each flag's name, type, default and help are
written once, in the dataclass field.

    @dataclass
    class EvalArgs:
        suite: str = arg("task suite to run", positional=True)
        model: str | None = arg("registry name, .gguf path or base+adapter", default=None)
        k: list[int] = arg("pass@k values", default_factory=lambda: [1], sep=",")
        jobs: int = arg("parallel samples", default=2)
        quiet: bool = arg("no progress bars", default=False)

    add_command(subparsers, "run", EvalArgs, run_eval, help="run a task suite")

A field without a default is a required flag (or a positional). `bool` fields become `--x/--no-x`.
`list[T]` fields take a separated string (`sep=","`), or repeat the flag (`repeat=True`: `--set a=1
--set b=2`). Values reach the dataclass as parsed types, so its `__post_init__` validates them and raises
`ValueError` naming the flag (`flag_name(field)` gives the spelling), which `potion.cli` turns into
exit 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_MISSING = dataclasses.MISSING


def arg(
    help: str,  # noqa: A002 - argparse's own name for it
    *,
    default: Any = _MISSING,
    default_factory: Callable[[], Any] | Any = _MISSING,
    positional: bool = False,
    flag: str | None = None,
    short: str | None = None,
    choices: typing.Sequence[Any] | None = None,
    metavar: str | None = None,
    sep: str | None = None,
    repeat: bool = False,
) -> Any:
    """A dataclass field that is also a command-line argument."""
    metadata = {
        "help": help,
        "positional": positional,
        "flag": flag,
        "short": short,
        "choices": choices,
        "metavar": metavar,
        "sep": sep,
        "repeat": repeat,
    }
    if default is not _MISSING:
        return dataclasses.field(default=default, metadata=metadata)
    if default_factory is not _MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(metadata=metadata)


def flag_name(field: dataclasses.Field) -> str:
    """`--max-tokens` for `max_tokens` (or the field's own `flag=`); a positional's upper-case name."""
    if field.metadata.get("positional"):
        return field.name.upper()
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
        raise TypeError(f"unsupported union type {tp!r}: use X | None")
    return tp, False


def _converter(tp: Any) -> Callable[[str], Any]:
    if tp is Path:
        return Path
    if tp in (str, int, float):
        return tp
    raise TypeError(f"unsupported flag type {tp!r} (str, int, float, bool, Path, list of those, X | None)")


def _split(convert: Callable[[str], Any], sep: str) -> Callable[[str], list[Any]]:
    def parse(text: str) -> list[Any]:
        return [convert(part.strip()) for part in text.split(sep) if part.strip()]

    parse.__name__ = getattr(convert, "__name__", "value")  # argparse names the type in its errors
    return parse


def _has_default(field: dataclasses.Field) -> bool:
    return field.default is not _MISSING or field.default_factory is not _MISSING


def _default_of(field: dataclasses.Field) -> Any:
    if field.default is not _MISSING:
        return field.default
    return field.default_factory()


def _help(field: dataclasses.Field) -> str:
    text = field.metadata["help"]
    if _has_default(field):
        default = _default_of(field)
        if isinstance(default, list) and field.metadata.get("sep"):
            default = field.metadata["sep"].join(str(d) for d in default)
        if default not in (None, [], "", False):
            text += f" (default: {default})"
    return text


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One argparse argument per field of the dataclass `cls` that was declared with `arg()`."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if "help" not in field.metadata:
            continue  # a field that is not a flag (set by the command itself)
        tp, _ = _unwrap_optional(hints[field.name])
        meta = field.metadata
        kwargs: dict[str, Any] = {"help": _help(field), "dest": field.name}
        if meta["choices"] is not None:
            kwargs["choices"] = list(meta["choices"])
        if meta["metavar"]:
            kwargs["metavar"] = meta["metavar"]
        if tp is bool:
            if not _has_default(field):
                raise TypeError(f"bool flag {field.name} needs a default")
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(tp) is list:
            (item,) = typing.get_args(tp)
            convert = _converter(item)
            if meta["repeat"]:
                kwargs.update(action="append", type=convert)
            else:
                kwargs["type"] = _split(convert, meta["sep"] or ",")
        else:
            kwargs["type"] = _converter(tp)
        if meta["positional"]:
            kwargs.pop("dest")
            if _has_default(field):
                kwargs["nargs"] = "?"
            parser.add_argument(field.name, **kwargs)
            parser.set_defaults(**({field.name: _default_of(field)} if _has_default(field) else {}))
            continue
        names = [flag_name(field)] + ([meta["short"]] if meta["short"] else [])
        if _has_default(field):
            # argparse's default stays None so that from_namespace can tell "not given" from "given".
            kwargs["default"] = None
        else:
            kwargs["required"] = True
        parser.add_argument(*names, **kwargs)


def from_namespace(cls: type[T], ns: argparse.Namespace, **overrides: Any) -> T:
    """Build `cls` from parsed flags: a flag not given keeps the dataclass default."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name in overrides:
            values[field.name] = overrides[field.name]
            continue
        if "help" not in field.metadata:
            continue
        given = getattr(ns, field.name, None)
        if given is None:
            if not _has_default(field):
                continue  # argparse already refused a missing required flag
            given = _default_of(field)
        values[field.name] = given
    return cls(**values)


def add_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    cls: type[T],
    func: Callable[[T], int | None],
    *,
    help: str,  # noqa: A002
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A subcommand whose flags are `cls`'s fields and whose action is `func(cls(...))`."""
    parser = subparsers.add_parser(name, help=help, description=description or help)
    add_arguments(parser, cls)
    parser.set_defaults(func=lambda ns: func(from_namespace(cls, ns)))
    return parser
