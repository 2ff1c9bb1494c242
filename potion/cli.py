"""The `potion` command line.

Built-in commands are the modules of `potion.commands`; the apps (`lsp`, `tui`, ...) add theirs through the
`potion.commands` entry-point group, so this package never imports them. Each command module has a
`register(subparsers)` that adds its parser and sets `func`, a function of the parsed namespace that
returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from importlib.metadata import entry_points

from potion import __version__, commands
from potion.errors import PotionError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="potion",
        description="Local AI assistant for Elixir: completions, hover docs, OTP scaffolds, chat.",
    )
    parser.add_argument("--version", action="version", version=f"potion {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"{commands.__name__}.{module.name}").register(sub)
    for ep in sorted(entry_points(group="potion.commands"), key=lambda e: e.name):
        try:
            ep.load()(sub)
        except ImportError as exc:  # an app whose optional dependencies are missing
            p = sub.add_parser(ep.name, help=f"(unavailable: {exc})")
            p.set_defaults(func=_unavailable(ep.name, exc))
    return parser


def _unavailable(name: str, exc: Exception):
    def run(_args: argparse.Namespace) -> int:
        raise PotionError(f"`potion {name}` cannot start: {exc}", hint="reinstall potion with its extras")

    return run


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except PotionError as exc:
        print(f"potion: error: {exc.user_message()}", file=sys.stderr)
        return 1
    except ValueError as exc:  # argument dataclasses name the bad flag in their ValueError
        print(f"potion: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("potion: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
