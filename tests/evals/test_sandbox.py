"""The sandbox on the real `elixir`: outcomes in MultiPL-E's categories, bad code contained, and the
project's suite: every reference solution passes, every empty body fails.

Each bad program defines `M.f` and does its bad thing inside it before returning the right answer, so it
would pass if the limit or the containment did not stop it: a test checks the outcome and the evidence
that the limit fired (the reason, what is left in the sample's directory, what the host saw)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from eval_helpers import needs_elixir

from evals import sandbox as sandbox_module
from evals.sandbox import MULTIPL_E_STATUS, Invocation, Limits, Outcome, Sandbox, isolation
from evals.tasks import load_suite

pytestmark = [pytest.mark.elixir, needs_elixir]

TESTS = (
    'ExUnit.start()\ndefmodule T do\n  use ExUnit.Case\n  test "t" do\n    assert M.f(2) == 4\n  end\nend\n'
)
PASS = "x * 2"
LOOP = "defmodule M do\n  def f(x), do: f(x + 1)\nend\n" + TESTS
SLEEPER = "sleep 31.7"  # a command line no other process on the machine has
# Opens OS processes until one is refused, saying how many it got first.
FORK = f"""for i <- 1..300 do
      try do
        Port.open({{:spawn, "{SLEEPER}"}}, [])
      rescue
        error ->
          IO.puts("spawned #{{i - 1}}")
          reraise error, __STACKTRACE__
      end
    end
    x * 2"""
SMALL = Limits(timeout_s=10, memory_mb=256, file_mb=16, processes=64)


def module(body: str) -> str:
    return f"defmodule M do\n  def f(x) do\n    {body}\n  end\nend\n" + TESTS


def huge_file(mb: int) -> str:
    return module(f'File.write!("big", :binary.copy("a", {mb} * 1024 * 1024))\n    x * 2')


def run_named(sandbox: Sandbox, programs: dict[str, str]) -> dict[str, Outcome]:
    return dict(zip(programs, sandbox.run_many(list(programs.values())), strict=True))


@pytest.fixture
def sample_files(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, int]]:
    """Size of every file in each run's sample directory as the run ends, before it is removed."""
    seen: list[dict[str, int]] = []
    execute = Sandbox._execute

    def spy(self: Sandbox, cmd: list[str], root: Path, *args: object, **kwargs: object) -> Invocation:
        invocation = execute(self, cmd, root, *args, **kwargs)
        seen.append({p.name: p.stat().st_size for p in root.iterdir() if p.is_file()})
        return invocation

    monkeypatch.setattr(Sandbox, "_execute", spy)
    return seen


@pytest.fixture
def fresh_isolation() -> Iterator[None]:
    """`isolation()` is probed once per process: probe again, and forget a simulated machine afterwards."""
    isolation.cache_clear()
    yield
    isolation.cache_clear()


def sleepers() -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                count += SLEEPER.encode() in (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
    return count


def test_outcomes_are_classified_in_multipl_e_categories() -> None:
    programs = {
        "pass": module(PASS),
        "assertion": module("x + 1"),
        "syntax": module("x +"),
        "undefined": module("g(x)"),
        "raise": module('raise ArgumentError, "no"'),
    }
    got = run_named(Sandbox(SMALL, jobs=2), programs)
    assert {n: o.status for n, o in got.items()} == {
        "pass": "pass",
        "assertion": "assertion_failure",
        "syntax": "compile_error",
        "undefined": "compile_error",
        "raise": "runtime_error",
    }
    assert (got["pass"].tests, got["pass"].passed) == (1, 1)
    assert "Assertion with == failed" in got["assertion"].detail
    assert "undefined function g/1" in got["undefined"].detail
    assert "(ArgumentError) no" in got["raise"].detail
    assert [o.multipl_e_status for o in got.values()] == [
        "OK",
        "AssertionError",
        "SyntaxError",
        "SyntaxError",
        "Exception",
    ]


def test_process_file_and_memory_limits_and_halt_stop_only_their_program(
    sample_files: list[dict[str, int]],
) -> None:
    programs = {
        "fork": module(FORK),
        "huge_file": huge_file(SMALL.file_mb + 4),
        "memory": module(':binary.copy("ab", 200_000_000)\n    x * 2'),  # 400 MB under a 256 MB limit
        "halt": module("System.halt(0)"),
        "after": module(PASS),
    }
    got = run_named(Sandbox(SMALL, jobs=2), programs)
    assert {n: o.status for n, o in got.items()} == {
        "fork": "runtime_error",
        "huge_file": "runtime_error",
        "memory": "runtime_error",
        "halt": "runtime_error",
        "after": "pass",
    }
    # The process limit refused a fork, before the program had as many processes as the limit allows.
    assert ":eagain" in got["fork"].detail
    spawned = int(got["fork"].stdout.split("spawned ")[1].split()[0])
    assert 0 < spawned < SMALL.processes
    if isolation().namespaces:  # the PID namespace took every process the program started with it
        assert sleepers() == 0
    # The write failed in the program (the VM ran its test to the end), and no file outgrew the limit.
    assert 'could not write to file "big": file too large' in got["huge_file"].detail
    assert got["huge_file"].tests == 1
    limit = SMALL.file_mb * 1024 * 1024
    assert any("big" in files for files in sample_files)
    assert max(size for files in sample_files for size in files.values()) <= limit
    # The allocation killed the VM, and the sandbox says why.
    assert got["memory"].detail == "memory limit"
    assert "Cannot allocate 400000000 bytes" in got["memory"].stderr
    assert got["halt"].detail == "the VM exited (code 0) before the tests finished (System.halt?)"


def test_a_refused_write_leaves_the_rest_of_a_batch_running() -> None:
    # One VM runs the whole batch: the second program needs module names of its own.
    second_program = module(PASS).replace("M", "N").replace("T do", "U do")
    first, second = Sandbox(SMALL).run_programs([huge_file(SMALL.file_mb + 4), second_program])
    assert (first.status, second.status) == ("runtime_error", "pass")
    assert "file too large" in first.detail


def test_an_infinite_loop_stops_at_the_wall_clock_timeout() -> None:
    outcome = Sandbox(Limits(timeout_s=2, cpu_s=30)).run(LOOP)
    assert (outcome.status, outcome.detail) == ("timeout", "wall-clock timeout")
    assert outcome.seconds < 5


def test_an_infinite_loop_stops_at_the_cpu_time_limit() -> None:
    outcome = Sandbox(Limits(timeout_s=20, cpu_s=2)).run(LOOP)
    assert (outcome.status, outcome.detail) == ("timeout", "CPU time limit")
    assert outcome.seconds < 8  # long before the wall clock (20 s) or ExUnit's own timeout (10 s)


@pytest.mark.skipif(not isolation().namespaces, reason="needs network, mount and PID namespaces")
def test_the_network_and_the_home_directories_are_out_of_reach() -> None:
    home_file = next((p for p in sorted(Path.home().iterdir()) if p.is_file()), None)
    if home_file is None:
        pytest.skip(f"no file in {Path.home()} to try to read")
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        port = server.getsockname()[1]
        programs = {
            "network": module(
                f"{{:ok, _}} = :gen_tcp.connect({{127, 0, 0, 1}}, {port}, [], 2000)\n    x * 2"
            ),
            "home": module(f'File.read!("{home_file}")\n    x * 2'),
            "after": module(PASS),
        }
        got = run_named(Sandbox(SMALL, jobs=2), programs)
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing connected to the host's listener
    assert {n: o.status for n, o in got.items()} == {
        "network": "runtime_error",
        "home": "runtime_error",
        "after": "pass",
    }
    assert "{:error, :enetunreach}" in got["network"].detail  # not even loopback is up
    assert f'could not read file "{home_file}": no such file or directory' in got["home"].detail


def test_without_namespaces_the_warning_says_what_is_missing_and_limits_still_hold(
    monkeypatch: pytest.MonkeyPatch, fresh_isolation: None
) -> None:
    which = sandbox_module.shutil.which
    monkeypatch.setattr(sandbox_module.shutil, "which", lambda n: None if n == "unshare" else which(n))
    assert isolation().warning == "no `unshare` (util-linux): generated code runs with the network"
    monkeypatch.undo()
    isolation.cache_clear()

    monkeypatch.setattr(sandbox_module, "_run_probe", lambda cmd: False)
    iso = isolation()
    assert (iso.namespaces, iso.user_namespace, iso.drop_privileges) == (False, False, False)
    warning = "network namespaces are not available here: generated code can reach the network and read $HOME"
    assert iso.warning == warning
    sandbox = Sandbox(Limits(timeout_s=20, cpu_s=2, file_mb=16), jobs=2)
    assert sandbox.warning == warning
    loop, huge = sandbox.run_many([LOOP, huge_file(20)])
    assert (loop.status, loop.detail) == ("timeout", "CPU time limit")
    assert (huge.status, huge.tests) == ("runtime_error", 1)
    assert "file too large" in huge.detail


def test_file_size_limit_leaves_room_for_the_jit() -> None:
    with pytest.raises(ValueError, match="file_mb must be at least 16"):
        Limits(file_mb=8)


def test_every_reference_solution_passes_and_every_empty_body_fails() -> None:
    suite = load_suite("elixir")
    sandbox = Sandbox(jobs=2)
    references = sandbox.run_programs([t.program(t.canonical_solution) for t in suite.tasks])
    failed = {
        t.name: (o.status, o.detail)
        for t, o in zip(suite.tasks, references, strict=True)
        if o.status != "pass"
    }
    assert failed == {}
    empties = sandbox.run_programs([t.program(t.empty_completion()) for t in suite.tasks])
    passing = [t.name for t, o in zip(suite.tasks, empties, strict=True) if o.status == "pass"]
    assert passing == []
    assert {o.multipl_e_status for o in references + empties} <= set(MULTIPL_E_STATUS.values())
