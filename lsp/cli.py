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
    metrics_port: int | None = arg(
        "serve Prometheus metrics on http://127.0.0.1:N/metrics (0: any free port, see potion/status)",
        default=None,
        metavar="N",
    )

    def __post_init__(self) -> None:
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ValueError(f"--metrics-port must be between 0 and 65535, got {self.metrics_port}")


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
    if args.metrics_port is not None:
        _serve_metrics(server, args.metrics_port)
    try:
        repairable = serve_stdio(server, sys.stdin.buffer, protocol_out)
    finally:
        server.close()
    return 0 if repairable else 1  # non-zero: the editor restarts a server whose input went bad


def _serve_metrics(server, port: int) -> None:
    """Start the /metrics endpoint; a port that cannot be bound is reported, the server still runs."""
    from lsprotocol import types

    log = logging.getLogger("lsp.metrics")
    try:
        bound = server.metrics.serve(port)
    except OSError as exc:
        message = f"Potion: metrics are off: cannot listen on 127.0.0.1:{port} ({exc.strerror or exc})"
        log.error("%s", message)
        server.add_startup_hook(
            "initialized",
            lambda ls: ls.show_message(message + "; pick another --metrics-port", types.MessageType.Warning),
        )
        return
    log.info("metrics on http://127.0.0.1:%d/metrics", bound)


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
