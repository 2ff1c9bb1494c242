"""`potion lsp`: run the language server over stdio.

Module-level imports stay light (argparse and potion.cli_args only) so that `potion --help` does not
load pygls.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from potion.cli_args import add_arguments, add_command, arg, from_namespace


@dataclass
class LspArgs:
    """The flags of `potion lsp` (and `python -m lsp`)."""

    stdio: bool = arg("speak LSP over stdin/stdout (the only transport)", default=True)
    log_file: Path | None = arg("write the server's log here (default: stderr)", default=None)
    verbose: bool = arg("log debug messages", default=False, short="-v")


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(
        subparsers,
        "lsp",
        LspArgs,
        run,
        help="run the language server (inline completions, hover, OTP scaffolds)",
        description="Run the Potion language server over stdio, for VS Code, Neovim and other LSP clients.",
    )


def run(args: LspArgs) -> int:
    # stdout carries the protocol: every log line goes to stderr or a file.
    handler: logging.Handler = (
        logging.FileHandler(args.log_file, encoding="utf-8")
        if args.log_file
        else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    if not args.verbose:
        logging.getLogger("lsp").setLevel(logging.INFO)

    from lsp.framing import serve_stdio
    from lsp.server import create_server

    protocol_out = _claim_stdout()
    server = create_server()
    try:
        repairable = serve_stdio(server, sys.stdin.buffer, protocol_out)
    finally:
        server.close()
    return 0 if repairable else 1  # non-zero: the editor restarts a server whose input went bad


def _claim_stdout():
    """Keep the protocol on a private copy of stdout and point fd 1 at stderr.

    Native code writes to fd 1 too, and llama-cpp-python even redirects fd 1 to /dev/null while a model
    loads: on the shared fd, responses sent meanwhile would vanish or a stray line would corrupt a message.
    """
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    return protocol_out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lsp", description="The Potion language server.")
    add_arguments(parser, LspArgs)
    return run(from_namespace(LspArgs, parser.parse_args(argv)))
