"""`potion lsp`: run the language server over stdio.

Module-level imports stay light (argparse only) so that `potion --help` does not load pygls.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stdio", action="store_true", default=True, help="speak LSP over stdin/stdout (default)"
    )
    parser.add_argument("--log-file", default=None, help="write the server's log here (default: stderr)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lsp",
        help="run the language server (inline completions, hover, OTP scaffolds)",
        description="Run the Potion language server over stdio, for VS Code, Neovim and other LSP clients.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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

    from lsp.server import create_server

    protocol_out = _claim_stdout()
    server = create_server()
    try:
        server.start_io(sys.stdin.buffer, protocol_out)
    finally:
        server.close()
    return 0


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
    add_arguments(parser)
    return run(parser.parse_args(argv))
