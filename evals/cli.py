"""`potion eval`: run task suites, compare models, measure infilling and perplexity.

Registered through the `potion.commands` entry point; module imports stay light so `potion --help` is fast.
"""

from __future__ import annotations

import argparse
import importlib

COMMANDS = ("run", "compare", "fim", "perplexity", "gain")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate models on Elixir: task suites in a sandbox, infilling, perplexity, comparisons",
        description="Evaluate models on Elixir the way Elixir developers judge them.",
    )
    sub = parser.add_subparsers(dest="eval_command", metavar="SUBCOMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"evals.commands.{name}").register(sub)
