"""OTP scaffolds: every template renders, compiles under the real elixirc, and bad input is refused."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from potion.elixir import analyze
from potion.errors import PotionError
from potion.scaffolds import SCAFFOLDS, ScaffoldError, module_path, render

KINDS = [
    "genserver",
    "supervisor",
    "dynamic_supervisor",
    "agent",
    "task",
    "registry",
    "application",
    "genstage_producer",
    "genstage_consumer",
    "phoenix_channel",
    "liveview",
]
# Renders that compile with Elixir alone (the others need gen_stage / phoenix).
COMPILED = {
    "genserver": ("Demo.Counter", {}),
    "genserver_anon": ("Demo.AnonServer", {"name": "none", "state": "[]"}),
    "supervisor": ("Demo.Sup", {"strategy": "rest_for_one"}),
    "dynamic_supervisor": ("Demo.DynSup", {"max_children": 5}),
    "agent": ("Demo.Store", {"state": "0"}),
    "agent_anon": ("Demo.AnonStore", {"name": "none"}),
    "task": ("Demo.Job", {}),
    "registry": ("Demo.Session", {"registry": "Demo.Reg"}),
    "application": ("Demo.Application", {"registry": "Demo.Reg"}),
}


def _kind(key: str) -> str:
    return key.removesuffix("_anon")


def test_every_kind_renders_a_documented_module() -> None:
    assert list(SCAFFOLDS) == KINDS
    for kind in KINDS:
        code = render(kind, "MyApp.Thing")
        assert code.startswith("defmodule MyApp.Thing do\n") and "@moduledoc" in code
        a = analyze(code)
        assert a.errors == [], kind
        mod = a.module("MyApp.Thing")
        callbacks = [f for f in mod.functions if f.impl is not None]
        if kind in ("agent", "task"):  # `use Agent`/`use Task` only add child_spec/1: no callbacks
            assert not callbacks and mod.uses == [kind.title()]
        else:
            assert callbacks and all(f.impl is True for f in callbacks), kind
            assert mod.behaviours, kind
        for fn in mod.functions:  # every public non-callback function has a doc and a spec
            if fn.public and fn.impl is None:
                assert fn.doc and fn.spec, (kind, fn.name)
        assert SCAFFOLDS[kind].title


def test_options_change_the_code() -> None:
    assert "name: __MODULE__" in render("genserver", "A.B")
    anon = render("genserver", "A.B", name="none", state="[]")
    assert "name: __MODULE__" not in anon and "def get(server)" in anon and "{:ok, []}" in anon
    assert "strategy: :one_for_all" in render("supervisor", "A.S", strategy="one_for_all")
    assert "max_children: 3" in render("dynamic_supervisor", "A.D", max_children=3)
    assert "{:via, Registry, {A.Registry, key}}" in render("registry", "A.Worker")
    assert "subscribe_to: [{A.Producer, max_demand: 50}]" in render(
        "genstage_consumer", "A.Consumer", max_demand=50
    )
    assert '"room:" <> _subtopic' in render("phoenix_channel", "AWeb.RoomChannel")
    assert "use Task, restart: :permanent" in render("task", "A.T", restart="permanent")


@pytest.mark.parametrize(
    "kind, module, options, message",
    [
        ("genserver", "my_app.worker", {}, "invalid module name 'my_app.worker'"),
        ("genserver", "MyApp..Worker", {}, "segment ''"),
        ("genserver", "MyApp.Wörker", {}, "segment 'Wörker'"),
        ("genserver", "", {}, "empty module name"),
        ("genserver", "MyApp.9Lives", {}, "segment '9Lives'"),
        ("gen_server", "MyApp.Worker", {}, "unknown scaffold 'gen_server'"),
        ("genserver", "MyApp.Worker", {"nmae": "x"}, "unknown option(s) for genserver: nmae"),
        ("genserver", "MyApp.Worker", {"name": "global"}, "invalid name 'global'"),
        ("genserver", "MyApp.Worker", {"state": "%{a: "}, "invalid state"),
        ("supervisor", "MyApp.Sup", {"strategy": "one_for_none"}, "invalid strategy"),
        ("dynamic_supervisor", "MyApp.D", {"max_children": -1}, "invalid max_children"),
        ("registry", "MyApp.W", {"registry": "bad name"}, "invalid registry name"),
        ("phoenix_channel", "MyApp.C", {"topic": "Bad Topic"}, "invalid topic"),
    ],
)
def test_bad_input_is_a_clear_error(kind: str, module: str, options: dict, message: str) -> None:
    with pytest.raises(ScaffoldError) as info:
        render(kind, module, **options)
    assert isinstance(info.value, PotionError)
    text = info.value.user_message()
    assert message in text and "\n" not in text and info.value.hint


def test_module_path() -> None:
    assert module_path("MyApp.Worker") == "lib/my_app/worker.ex"
    assert module_path("MyAppWeb.UserLive.Index") == "lib/my_app_web/user_live/index.ex"
    assert module_path("MyApp.HTTPServer") == "lib/my_app/http_server.ex"
    with pytest.raises(ScaffoldError):
        module_path("not_a_module")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("elixirc") is None:
        pytest.skip("`elixirc` is not on PATH (apt install elixir)")
    root = tmp_path_factory.mktemp("scaffolds")
    src, out = root / "src", root / "ebin"
    src.mkdir()
    out.mkdir()
    for key, (module, options) in COMPILED.items():
        (src / f"{key}.ex").write_text(render(_kind(key), module, **options))
    # One elixirc run for all templates: start-up dominates.
    proc = subprocess.run(
        ["elixirc", "--warnings-as-errors", "-o", str(out), *sorted(map(str, src.glob("*.ex")))],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.mark.elixir
def test_templates_compile_with_elixirc(compiled: Path) -> None:
    beams = {p.name for p in compiled.glob("*.beam")}
    assert beams == {f"Elixir.{module}.beam" for module, _ in COMPILED.values()}


SMOKE = """
{:ok, _} = Registry.start_link(keys: :unique, name: Demo.Reg)
{:ok, _} = Demo.Counter.start_link()
:ok = Demo.Counter.put(41)
41 = Demo.Counter.get()
{:ok, anon} = Demo.AnonServer.start_link()
[] = Demo.AnonServer.get(anon)
{:ok, _} = Demo.Store.start_link()
:ok = Demo.Store.update(&(&1 + 1))
1 = Demo.Store.get()
{:ok, _} = Demo.Sup.start_link()
{:ok, _} = Demo.DynSup.start_link()
{:ok, child} = Demo.DynSup.start_child({Agent, fn -> :hi end})
:hi = Agent.get(child, & &1)
:ok = Demo.DynSup.stop_child(child)
{:ok, _} = Demo.Session.start_link("alice")
pid = Demo.Session.whereis("alice")
true = is_pid(pid)
%{} = Demo.Session.get("alice")
nil = Demo.Session.whereis("bob")
{:ok, task} = Demo.Job.start_link(:x)
true = is_pid(task)
IO.puts("SMOKE OK")
"""


@pytest.mark.elixir
def test_compiled_modules_start_and_work(compiled: Path) -> None:
    proc = subprocess.run(
        ["elixir", "-pa", str(compiled), "-e", SMOKE], capture_output=True, text=True, timeout=120
    )
    assert "SMOKE OK" in proc.stdout, proc.stdout + proc.stderr


PARSE = """
for path <- System.argv() do
  {:ok, _} = path |> File.read!() |> Code.string_to_quoted(file: path)
  IO.puts("PARSED " <> Path.basename(path))
end
"""


@pytest.mark.elixir
def test_dependency_templates_parse_with_elixir(tmp_path: Path) -> None:
    if shutil.which("elixir") is None:
        pytest.skip("`elixir` is not on PATH")
    kinds = [k for k in KINDS if SCAFFOLDS[k].needs]
    assert kinds == ["genstage_producer", "genstage_consumer", "phoenix_channel", "liveview"]
    files = []
    for kind in kinds:
        path = tmp_path / f"{kind}.ex"
        path.write_text(render(kind, "DemoWeb.Thing"))
        files.append(str(path))
    proc = subprocess.run(["elixir", "-e", PARSE, *files], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("PARSED ") == len(kinds)
