"""`potion corpus build|stats|tokens` (registered through the `potion.commands` entry point)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from corpus.commands import build, stats, tokens

    parser = subparsers.add_parser("corpus", help="build Elixir training data, show its manifest and tokens")
    sub = parser.add_subparsers(dest="corpus_command", metavar="ACTION")
    build.register(sub)
    stats.register(sub)
    tokens.register(sub)
    parser.set_defaults(func=lambda ns: parser.print_help() or 0)
