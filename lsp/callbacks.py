"""Behaviour callbacks Potion knows how to write: which a module needs, which it lacks, and their code.

Used by the completion of missing callbacks and by the "add missing callbacks" quick fix. The table
covers the OTP behaviours of `potion.scaffolds` (and Plug); a `use X` counts as `@behaviour X` for
them because their `__using__` declares it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from potion.elixir.model import ModuleDef


@dataclass(frozen=True)
class Callback:
    behaviour: str
    name: str
    arity: int
    required: bool
    body: str  # the clause without `@impl true`, `{indent}` not applied; lines joined with "\n"

    @property
    def key(self) -> str:
        return f"{self.name}/{self.arity}"


def _cb(behaviour: str, name: str, required: bool, head: str, result: str) -> Callback:
    arity = head.count(",") + 1 if "(" in head and not head.endswith("()") else 0
    body = "\n".join(f"  {line}" for line in result.split("\n"))
    return Callback(behaviour, name, arity, required, f"def {head} do\n{body}\nend")


_GEN_SERVER = [
    _cb("GenServer", "init", True, "init(init_arg)", "{:ok, init_arg}"),
    _cb("GenServer", "handle_call", False, "handle_call(request, _from, state)", "{:reply, request, state}"),
    _cb("GenServer", "handle_cast", False, "handle_cast(_request, state)", "{:noreply, state}"),
    _cb("GenServer", "handle_info", False, "handle_info(_msg, state)", "{:noreply, state}"),
    _cb("GenServer", "handle_continue", False, "handle_continue(_continue_arg, state)", "{:noreply, state}"),
    _cb("GenServer", "terminate", False, "terminate(_reason, _state)", ":ok"),
    _cb("GenServer", "code_change", False, "code_change(_old_vsn, state, _extra)", "{:ok, state}"),
]

CALLBACKS: dict[str, list[Callback]] = {
    "GenServer": _GEN_SERVER,
    "Supervisor": [
        _cb(
            "Supervisor",
            "init",
            True,
            "init(_init_arg)",
            "children = []\nSupervisor.init(children, strategy: :one_for_one)",
        )
    ],
    "DynamicSupervisor": [
        _cb(
            "DynamicSupervisor",
            "init",
            True,
            "init(_init_arg)",
            "DynamicSupervisor.init(strategy: :one_for_one)",
        )
    ],
    "Application": [
        _cb(
            "Application",
            "start",
            True,
            "start(_type, _args)",
            "children = []\n"
            "Supervisor.start_link(children, strategy: :one_for_one, name: __MODULE__.Supervisor)",
        ),
        _cb("Application", "stop", False, "stop(_state)", ":ok"),
        _cb("Application", "prep_stop", False, "prep_stop(state)", "state"),
        _cb("Application", "config_change", False, "config_change(_changed, _new, _removed)", ":ok"),
    ],
    "GenStage": [
        _cb("GenStage", "init", True, "init(state)", "{:producer, state}"),
        _cb("GenStage", "handle_demand", False, "handle_demand(_demand, state)", "{:noreply, [], state}"),
        _cb(
            "GenStage",
            "handle_events",
            False,
            "handle_events(_events, _from, state)",
            "{:noreply, [], state}",
        ),
        _cb("GenStage", "handle_info", False, "handle_info(_msg, state)", "{:noreply, [], state}"),
    ],
    "Phoenix.Channel": [
        _cb("Phoenix.Channel", "join", True, "join(_topic, _payload, socket)", "{:ok, socket}"),
        _cb(
            "Phoenix.Channel", "handle_in", False, "handle_in(_event, _payload, socket)", "{:noreply, socket}"
        ),
        _cb("Phoenix.Channel", "handle_info", False, "handle_info(_msg, socket)", "{:noreply, socket}"),
        _cb("Phoenix.Channel", "terminate", False, "terminate(_reason, _socket)", ":ok"),
    ],
    "Phoenix.LiveView": [
        _cb("Phoenix.LiveView", "mount", True, "mount(_params, _session, socket)", "{:ok, socket}"),
        _cb("Phoenix.LiveView", "render", False, "render(assigns)", '~H"""\n<div></div>\n"""'),
        _cb(
            "Phoenix.LiveView",
            "handle_event",
            False,
            "handle_event(_event, _params, socket)",
            "{:noreply, socket}",
        ),
        _cb(
            "Phoenix.LiveView",
            "handle_params",
            False,
            "handle_params(_params, _uri, socket)",
            "{:noreply, socket}",
        ),
        _cb("Phoenix.LiveView", "handle_info", False, "handle_info(_msg, socket)", "{:noreply, socket}"),
    ],
    "Plug": [
        _cb("Plug", "init", True, "init(opts)", "opts"),
        _cb("Plug", "call", True, "call(conn, _opts)", "conn"),
    ],
}

# `use X` that means `@behaviour Y` (Plug.Builder etc. are not behaviours the user implements).
_USE_AS_BEHAVIOUR = {"Phoenix.LiveView": "Phoenix.LiveView", "Phoenix.Channel": "Phoenix.Channel"}

Known = Mapping[str, list[Callback]]

_CALLBACK_ATTR = re.compile(
    r"^[ \t]*@(?:callback|macrocallback)\s+(?P<name>[a-z_][A-Za-z0-9_]*[?!]?)\s*(?:\((?P<args>.*?)\))?\s*::",
    re.M | re.S,
)
_OPTIONAL = re.compile(r"^[ \t]*@optional_callbacks\s+(?P<list>[^\n]*(?:\n[ \t]+[^@\n][^\n]*)*)", re.M)


def parse_callbacks(behaviour: str, source: str) -> list[Callback]:
    """The `@callback`s a behaviour module's source declares, as clauses that raise until written.

    A regex over the attribute text, not a typespec parser: argument names come from `name :: type`
    annotations where present (`arg1`... otherwise); `@optional_callbacks` marks the others optional.
    """
    optional = {
        (name, int(arity))
        for m in _OPTIONAL.finditer(source)
        for name, arity in re.findall(r"([a-z_]\w*[?!]?):\s*(\d+)", m["list"])
    }
    out = []
    for m in _CALLBACK_ATTR.finditer(source):
        args = split_args(m["args"] or "")
        params = []
        for i, arg in enumerate(args, 1):
            named = re.match(r"\s*([a-z_]\w*)\s*::", arg)
            params.append(f"_{named.group(1).lstrip('_')}" if named else f"_arg{i}")
        head = f"{m['name']}({', '.join(params)})"
        cb = Callback(
            behaviour,
            m["name"],
            len(params),
            (m["name"], len(params)) not in optional,
            f'def {head} do\n  raise "{behaviour}.{m["name"]}/{len(params)} is not implemented yet"\nend',
        )
        if all(c.key != cb.key for c in out):
            out.append(cb)
    return out


def split_args(text: str) -> list[str]:
    """Top-level comma-separated parts of an argument list (brackets nest)."""
    if not text.strip():
        return []
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


def behaviours_of(module: ModuleDef, known: Known = CALLBACKS) -> list[str]:
    """Behaviours a module implements that we know callbacks of: `@behaviour X` plus `use X`."""
    out: list[str] = []
    for name in [*module.behaviours, *module.uses]:
        name = module.aliases.get(name, name)
        name = _USE_AS_BEHAVIOUR.get(name, name)
        if name in known and name not in out:
            out.append(name)
    return out


def declared_behaviours(module: ModuleDef) -> list[str]:
    """Every behaviour named by `@behaviour` (aliases resolved), known to us or not."""
    return [module.aliases.get(name, name) for name in module.behaviours]


def missing_callbacks(
    module: ModuleDef, *, required_only: bool = False, known: Known = CALLBACKS
) -> list[Callback]:
    """Callbacks of the module's behaviours it does not define (by name and arity)."""
    defined = {(f.name, a) for f in module.functions for a in f.arities}
    seen: set[tuple[str, int]] = set()
    out = []
    for behaviour in behaviours_of(module, known):
        for cb in known[behaviour]:
            key = (cb.name, cb.arity)
            if key in defined or key in seen or (required_only and not cb.required):
                continue
            seen.add(key)
            out.append(cb)
    return out


def callback_code(cb: Callback, indent: str, *, impl: bool = True) -> str:
    """The callback's clause indented to `indent`, preceded by `@impl true`, ending with a newline."""
    lines = (["@impl true"] if impl else []) + cb.body.split("\n")
    return "".join(f"{indent}{line}\n" if line.strip() else "\n" for line in lines)
