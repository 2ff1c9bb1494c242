"""OTP scaffolds: GenServer, Supervisor, Agent, Task, Registry, Application, GenStage, Phoenix modules.

render("genserver", "MyApp.Cache", name="module", state="%{}")  -> Elixir source
module_path("MyApp.Cache")                                      -> "lib/my_app/cache.ex"
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from string import Template

from potion.errors import ScaffoldError
from potion.scaffolds import templates

__all__ = ["SCAFFOLDS", "Scaffold", "ScaffoldError", "module_path", "render", "validate_module"]

_SEGMENT = re.compile(r"[A-Z][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Scaffold:
    kind: str
    title: str
    template: str
    options: dict[str, object] = field(default_factory=dict)  # option -> default (None: derived)
    needs: str | None = None  # a dependency outside Elixir (the code parses but compiles only with it)


SCAFFOLDS: dict[str, Scaffold] = {
    s.kind: s
    for s in (
        Scaffold("genserver", "GenServer", templates.GENSERVER, {"name": "module", "state": "%{}"}),
        Scaffold("supervisor", "Supervisor", templates.SUPERVISOR, {"strategy": "one_for_one"}),
        Scaffold(
            "dynamic_supervisor", "DynamicSupervisor", templates.DYNAMIC_SUPERVISOR, {"max_children": None}
        ),
        Scaffold("agent", "Agent", templates.AGENT, {"name": "module", "state": "%{}"}),
        Scaffold("task", "Task (supervised)", templates.TASK, {"restart": "transient"}),
        Scaffold(
            "registry", "Registry-named GenServer", templates.REGISTRY, {"registry": None, "state": "%{}"}
        ),
        Scaffold("application", "Application", templates.APPLICATION, {"registry": None, "supervisor": None}),
        Scaffold("genstage_producer", "GenStage producer", templates.GENSTAGE_PRODUCER, {}, "gen_stage"),
        Scaffold(
            "genstage_consumer",
            "GenStage consumer",
            templates.GENSTAGE_CONSUMER,
            {"producer": None, "max_demand": 10},
            "gen_stage",
        ),
        Scaffold("phoenix_channel", "Phoenix Channel", templates.PHOENIX_CHANNEL, {"topic": None}, "phoenix"),
        Scaffold("liveview", "Phoenix LiveView", templates.LIVEVIEW, {}, "phoenix_live_view"),
    )
}


def validate_module(module: str, *, what: str = "module name") -> str:
    """Return `module` if every dot-separated segment is an Elixir alias (`Foo.Bar`), else raise."""
    if not isinstance(module, str) or not module:
        raise ScaffoldError(f"empty {what}", hint="use a name like MyApp.Worker")
    name = module[len("Elixir.") :] if module.startswith("Elixir.") else module
    for segment in name.split("."):
        if not _SEGMENT.fullmatch(segment):
            raise ScaffoldError(
                f"invalid {what} {module!r}: segment {segment!r} must start with an uppercase letter "
                "and contain only letters, digits and _",
                hint="use a name like MyApp.Worker",
            )
    return name


def underscore(segment: str) -> str:
    """`MyAppWeb` -> `my_app_web`, `HTTPServer` -> `http_server` (like Macro.underscore)."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", segment)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


def module_path(module: str) -> str:
    """Where Mix expects the module: `MyApp.Workers.Cache` -> `lib/my_app/workers/cache.ex`."""
    name = validate_module(module)
    return "lib/" + "/".join(underscore(s) for s in name.split(".")) + ".ex"


def render(kind: str, module: str, **options: object) -> str:
    """Render the `kind` scaffold for `module`. Raises ScaffoldError for an unknown kind, an invalid
    module name or option."""
    scaffold = SCAFFOLDS.get(kind)
    if scaffold is None:
        raise ScaffoldError(f"unknown scaffold {kind!r}", hint=f"choose one of: {', '.join(SCAFFOLDS)}")
    module = validate_module(module)
    unknown = sorted(set(options) - set(scaffold.options))
    if unknown:
        allowed = ", ".join(scaffold.options) or "none"
        raise ScaffoldError(f"unknown option(s) for {kind}: {', '.join(unknown)}", hint=f"allowed: {allowed}")
    opts = {**scaffold.options, **{k: v for k, v in options.items() if v is not None}}
    values = {"module": module, "short": module.split(".")[-1]}
    values.update(_OPTION_RENDERERS[kind](module, opts))
    return Template(scaffold.template).substitute(values)


def _root(module: str) -> str:
    return module.split(".")[0]


def _choice(kind: str, option: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ScaffoldError(
            f"invalid {option} {value!r} for {kind}", hint=f"use one of: {', '.join(allowed)}"
        )
    return str(value)


def _expression(kind: str, value: object) -> str:
    """An Elixir expression option (initial state): must parse on its own."""
    from potion.elixir import is_balanced  # lazy: scaffolds stay importable without a tree-sitter parse

    text = str(value).strip()
    if not text or "\n" in text or not is_balanced(text):
        raise ScaffoldError(
            f"invalid state {value!r} for {kind}", hint="give one Elixir expression, e.g. %{}"
        )
    return text


def _positive_int(kind: str, option: str, value: object) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | str)
        or not str(value).isdigit()
        or int(value) < 1
    ):
        raise ScaffoldError(f"invalid {option} {value!r} for {kind}", hint="use a positive integer")
    return int(value)


def _named(kind: str, opts: dict[str, object], behaviour: str) -> dict[str, str]:
    name = _choice(kind, "name", opts["name"], ("module", "none"))
    state = _expression(kind, opts["state"])
    if name == "module":  # registered under the module name: the API needs no pid
        return {
            "name_opt": ", name: __MODULE__",
            "server": "__MODULE__",
            "server_param": "",
            "server_arg": "",
            "server_param_comma": "",
            "server_arg_comma": "",
            "state": state,
        }
    return {
        "name_opt": "",
        "server": "server",
        "server_param": f"{behaviour}",
        "server_arg": "server",
        "server_param_comma": f"{behaviour}, ",
        "server_arg_comma": "server, ",
        "state": state,
    }


def _genserver(module: str, opts: dict[str, object]) -> dict[str, str]:
    return _named("genserver", opts, "GenServer.server()")


def _agent(module: str, opts: dict[str, object]) -> dict[str, str]:
    return _named("agent", opts, "Agent.agent()")


def _supervisor(module: str, opts: dict[str, object]) -> dict[str, str]:
    strategy = _choice(
        "supervisor", "strategy", opts["strategy"], ("one_for_one", "one_for_all", "rest_for_one")
    )
    return {"strategy": strategy}


def _dynamic_supervisor(module: str, opts: dict[str, object]) -> dict[str, str]:
    value = opts.get("max_children")
    if value is None:
        return {"max_children": ""}
    return {"max_children": f", max_children: {_positive_int('dynamic_supervisor', 'max_children', value)}"}


def _task(module: str, opts: dict[str, object]) -> dict[str, str]:
    return {"restart": _choice("task", "restart", opts["restart"], ("temporary", "transient", "permanent"))}


def _registry(module: str, opts: dict[str, object]) -> dict[str, str]:
    registry = validate_module(str(opts.get("registry") or f"{_root(module)}.Registry"), what="registry name")
    return {"registry": registry, "state": _expression("registry", opts["state"])}


def _application(module: str, opts: dict[str, object]) -> dict[str, str]:
    registry = validate_module(str(opts.get("registry") or f"{_root(module)}.Registry"), what="registry name")
    supervisor = validate_module(
        str(opts.get("supervisor") or f"{_root(module)}.Supervisor"), what="supervisor name"
    )
    return {"registry": registry, "supervisor": supervisor}


def _consumer(module: str, opts: dict[str, object]) -> dict[str, str]:
    parent = module.rsplit(".", 1)[0] if "." in module else module
    producer = validate_module(str(opts.get("producer") or f"{parent}.Producer"), what="producer name")
    return {
        "producer": producer,
        "max_demand": str(_positive_int("genstage_consumer", "max_demand", opts["max_demand"])),
    }


def _channel(module: str, opts: dict[str, object]) -> dict[str, str]:
    topic = opts.get("topic") or underscore(module.split(".")[-1]).removesuffix("_channel") or "room"
    if not re.fullmatch(r"[a-z0-9_]+", str(topic)):
        raise ScaffoldError(
            f"invalid topic {topic!r} for phoenix_channel", hint="use lowercase letters, digits, _"
        )
    return {"topic": str(topic)}


def _nothing(module: str, opts: dict[str, object]) -> dict[str, str]:
    return {}


_OPTION_RENDERERS: dict[str, Callable[[str, dict[str, object]], dict[str, str]]] = {
    "genserver": _genserver,
    "supervisor": _supervisor,
    "dynamic_supervisor": _dynamic_supervisor,
    "agent": _agent,
    "task": _task,
    "registry": _registry,
    "application": _application,
    "genstage_producer": _nothing,
    "genstage_consumer": _consumer,
    "phoenix_channel": _channel,
    "liveview": _nothing,
}
