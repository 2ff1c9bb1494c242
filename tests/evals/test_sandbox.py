"""The sandbox on the real `elixir`: outcomes in MultiPL-E's categories, bad code contained, and the
project's suite: every reference solution passes, every empty body fails."""

from __future__ import annotations

import os

import pytest
from eval_helpers import needs_elixir

from evals.sandbox import MULTIPL_E_STATUS, Limits, Sandbox, isolation
from evals.tasks import load_suite

pytestmark = [pytest.mark.elixir, needs_elixir]

TESTS = (
    'ExUnit.start()\ndefmodule T do\n  use ExUnit.Case\n  test "t" do\n    assert M.f(2) == 4\n  end\nend\n'
)


def module(body: str) -> str:
    return f"defmodule M do\n  def f(x) do\n    {body}\n  end\nend\n" + TESTS


def test_outcomes_and_bad_code_are_contained_and_classified() -> None:
    programs = {
        "pass": (module("x * 2"), "pass"),
        "assertion": (module("x + 1"), "assertion_failure"),
        "syntax": (module("x +"), "compile_error"),
        "undefined": (module("g(x)"), "compile_error"),
        "raise": (module('raise ArgumentError, "no"'), "runtime_error"),
        "loop": ("defmodule L do\n  def f, do: f()\nend\nL.f()\n", "timeout"),
        "halt": ("System.halt(0)\n" + TESTS, "runtime_error"),
        "fork": ('for _ <- 1..400, do: Port.open({:spawn, "sleep 60"}, [])\n' + TESTS, "runtime_error"),
        "huge_file": ('File.write!("big", :binary.copy("a", 100_000_000))\n' + TESTS, "runtime_error"),
        "memory": (':binary.copy("ab", 1_000_000_000)\n' + TESTS, "runtime_error"),
        "network": ("{:ok, _} = :gen_tcp.connect({1, 1, 1, 1}, 80, [], 2000)\n" + TESTS, "runtime_error"),
        "home": (f'File.read!("{os.path.expanduser("~")}/.bashrc")\n' + TESTS, "runtime_error"),
    }
    sandbox = Sandbox(Limits(timeout_s=6, memory_mb=512, processes=96), jobs=2)
    names = list(programs)
    outcomes = sandbox.run_many([programs[n][0] for n in names])
    got = {n: o.status for n, o in zip(names, outcomes, strict=True)}
    assert got == {n: programs[n][1] for n in names}
    details = {n: o.detail for n, o in zip(names, outcomes, strict=True)}
    assert "System.halt" in details["halt"] and "undefined function g/1" in details["undefined"]
    if isolation().namespaces:
        assert ":enetunreach" in details["network"] or "econnrefused" in details["network"]
        assert "no such file" in details["home"] or "eacces" in details["home"]
    assert {o.multipl_e_status for o in outcomes} <= set(MULTIPL_E_STATUS.values())


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
