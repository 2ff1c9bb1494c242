"""`potion doctor`: is everything Potion needs installed and working? A ✓/✗ table, exit 1 if not.

Essential: llama-cpp-python (imported in a child process, because a native build for the wrong CPU
dies with SIGILL and would take the doctor with it), the model (verified through its sidecar, so no
491 MB re-hash when nothing changed) and the editor-path libraries. `elixir` is recommended only:
completions work without it, scaffold checks and evals do not.
"""

from __future__ import annotations

import argparse
import platform
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from potion import __version__, registry
from potion.errors import PotionError
from potion.gguf_header import read_metadata

_TIMEOUT_S = 30


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    essential: bool = True
    hint: str | None = None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("doctor", help="check the installation: llama.cpp, model, elixir, libraries")
    p.add_argument(
        "--model",
        default=None,
        help=f"model to check (default {registry.DEFAULT_MODEL}); name, hf: spec or path",
    )
    p.set_defaults(func=doctor_command)


def doctor_command(args: argparse.Namespace) -> int:
    checks = run_checks(args.model)
    console = Console(width=160) if not Console().is_terminal else Console()
    table = Table(box=None, pad_edge=False, show_header=False)
    table.add_column("", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("detail")
    for c in checks:
        mark = "[green]✓[/]" if c.ok else ("[red]✗[/]" if c.essential else "[yellow]![/]")
        detail = c.detail if c.ok or not c.hint else f"{c.detail} — {c.hint}"
        table.add_row(mark, escape(c.name), escape(detail))
    with console.capture() as captured:
        console.print(table, highlight=False)
    # Rich pads every row to the table's width; trailing blanks only get in the way of grep and diff.
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
    sys.stdout.flush()
    broken = [c for c in checks if c.essential and not c.ok]
    if broken:
        console.print(f"[red]{len(broken)} essential check(s) failed[/]: {', '.join(c.name for c in broken)}")
        return 1
    console.print("[green]Potion is ready.[/]")
    return 0


def run_checks(model: str | None = None) -> list[Check]:
    """Every check, in display order. Never raises: a failing probe is a failed check."""
    return [
        Check("python", sys.version_info >= (3, 11), f"{platform.python_version()} ({sys.executable})"),
        Check("potion", True, __version__),
        check_llama_cpp(),
        check_model(model),
        check_elixir(),
        *(check_package(dist, essential) for dist, essential in _PACKAGES),
    ]


_PACKAGES = [("pygls", True), ("textual", True), ("tree-sitter", True), ("tree-sitter-elixir", True)]


def check_package(dist: str, essential: bool = True) -> Check:
    try:
        return Check(dist, True, metadata.version(dist), essential)
    except metadata.PackageNotFoundError:
        return Check(
            dist, False, "not installed", essential, hint="pip install potion (reinstall its dependencies)"
        )


def check_llama_cpp() -> Check:
    code = "import llama_cpp, sys; sys.stdout.write(llama_cpp.__version__)"
    hint = "pip install 'potion[llama]' with portable CMAKE_ARGS (see README)"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return Check("llama-cpp-python", False, f"import took over {_TIMEOUT_S}s", hint=hint)
    if proc.returncode == 0:
        return Check("llama-cpp-python", True, proc.stdout.strip())
    if proc.returncode < 0:  # killed by a signal: SIGILL means a build for another CPU
        sig = signal.Signals(-proc.returncode).name
        return Check("llama-cpp-python", False, f"import crashed with {sig}", hint=f"rebuild it: {hint}")
    last = (proc.stderr.strip().splitlines() or ["import failed"])[-1]
    return Check("llama-cpp-python", False, last, hint=hint)


def check_model(spec: str | None = None) -> Check:
    """The model present and verified, without assembling or downloading (pull=False)."""
    name = f"model {spec or registry.DEFAULT_MODEL}"
    try:
        path = registry.resolve(spec, pull=False)
        meta = read_metadata(path, keys={"general.architecture", "general.name"})
    except PotionError as exc:
        return Check(name, False, exc.message, hint=exc.hint)
    size = path.stat().st_size
    shown = f"{size / 1e6:,.0f} MB" if size >= 1e6 else f"{size:,} bytes"
    arch = meta.get("general.architecture", "unknown architecture")
    how = "sha256 verified" if spec is None or spec in registry.MODELS else "GGUF header checked"
    return Check(name, True, f"{path} ({shown}, {arch}, {how})")


def check_elixir() -> Check:
    exe = shutil.which("elixir")
    hint = "install Elixir (e.g. apt install elixir) for scaffold checks and evals"
    if not exe:
        return Check("elixir", False, "not found on PATH", essential=False, hint=hint)
    try:
        proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("elixir", False, f"{exe} does not run: {exc}", essential=False, hint=hint)
    found = re.search(r"^Elixir (\S+)", proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or not found:
        return Check("elixir", False, f"{exe} --version failed", essential=False, hint=hint)
    otp = re.search(r"Erlang/OTP (\d+)", proc.stdout)
    return Check(
        "elixir", True, f"{found.group(1)} (OTP {otp.group(1) if otp else '?'}) at {exe}", essential=False
    )
