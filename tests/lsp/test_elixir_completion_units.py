"""Plain functions behind Elixir completion: what is being typed, callbacks, item building."""

from __future__ import annotations

import pytest
from lsprotocol import types

from lsp.callbacks import CALLBACKS, behaviours_of, callback_code, missing_callbacks
from lsp.elixir_cursor import Typed, def_start, resolve_module, typed_before
from lsp.features.elixir_completion import _params, callback_items, local_items
from lsp.workspace_index import WorkspaceIndex
from potion.elixir import analyze

RANGE = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("  Enum.ma", Typed("call", "ma", "Enum")),
        ("  x |> Enum.", Typed("call", "", "Enum")),
        ("  MyApp.Worker.st", Typed("call", "st", "MyApp.Worker")),
        ("  __MODULE__.hel", Typed("call", "hel", "__MODULE__")),
        ("  :ets.ins", Typed("call", "ins", ":ets")),
        ("  MyApp.Wor", Typed("module", "MyApp.Wor")),
        ("  Gen", Typed("module", "Gen")),
        ("  res = hel", Typed("local", "hel")),
        ("  @do", Typed("attribute", "do")),
        ("  @", Typed("attribute", "")),
        ("  x = @@", Typed("none")),
        ('  IO.puts("Enum.', Typed("none")),  # inside a string
        ("  # Enum.", Typed("none")),  # inside a comment
        ("  x.field", Typed("none")),  # a map field access, not a module call
        ("", Typed("none")),
    ],
)
def test_typed_before(line: str, expected: Typed) -> None:
    assert typed_before(line) == expected


def test_def_start_only_on_a_lone_word() -> None:
    assert def_start("  ", "") == ("  ", "")
    assert def_start("  handle_", "") == ("  ", "handle_")
    assert def_start("  def han", "") == ("  ", "def han")
    assert def_start("  x = han", "") is None
    assert def_start("  han", "dle(x)") is None


COUNTER = """defmodule MyApp.Counter do
  use GenServer
  alias MyApp.Store, as: S
  import MyApp.Helpers

  def start_link(n), do: GenServer.start_link(__MODULE__, n)

  @impl true
  def init(n), do: {:ok, n}

  defp bump(n), do: n + 1
end
"""


def test_missing_callbacks_of_a_genserver() -> None:
    module = analyze(COUNTER).modules[0]
    assert behaviours_of(module) == ["GenServer"]
    missing = [cb.key for cb in missing_callbacks(module)]
    assert "init/1" not in missing and "handle_call/3" in missing and "handle_cast/2" in missing
    assert missing_callbacks(module, required_only=True) == []  # init/1 is there
    no_init = analyze(COUNTER.replace("def init(n)", "def other(n)")).modules[0]
    assert [cb.key for cb in missing_callbacks(no_init, required_only=True)] == ["init/1"]


def test_behaviour_attribute_and_unknown_behaviours() -> None:
    source = "defmodule P do\n  @behaviour Plug\n  @behaviour MyOwn\n  def init(o), do: o\nend\n"
    module = analyze(source).modules[0]
    assert behaviours_of(module) == ["Plug"]
    assert [cb.key for cb in missing_callbacks(module)] == ["call/2"]


def test_callback_code_is_indented_and_marked_impl() -> None:
    cb = next(c for c in CALLBACKS["GenServer"] if c.name == "handle_call")
    assert callback_code(cb, "  ") == (
        "  @impl true\n  def handle_call(request, _from, state) do\n    {:reply, request, state}\n  end\n"
    )
    assert cb.arity == 3


@pytest.mark.elixir
def test_every_callback_template_compiles(tmp_path) -> None:
    import shutil
    import subprocess

    if shutil.which("elixirc") is None:
        pytest.skip("needs elixirc")
    # Phoenix/Plug/GenStage behaviours are not installed: compile their bodies as plain functions.
    body = "".join(callback_code(cb, "  ", impl=False) for cbs in CALLBACKS.values() for cb in cbs)
    body = body.replace('~H"""', '"""')
    source = tmp_path / "callbacks.ex"
    source.write_text(f"defmodule CallbackTemplates do\n{body}end\n")
    result = subprocess.run(
        ["elixirc", "--ignore-module-conflict", str(source)], cwd=tmp_path, capture_output=True, text=True
    )
    # Same name/arity appears in several behaviours: "clauses ... should be grouped" is only a warning.
    assert result.returncode == 0, result.stderr


def test_callback_items_replace_the_typed_word() -> None:
    module = analyze(COUNTER).modules[0]
    items = callback_items(module, "  ", "handle_c", RANGE)
    labels = [i.label for i in items]
    assert labels == ["def handle_call/3", "def handle_cast/2", "def handle_continue/2"]
    first = items[0]
    assert first.text_edit.new_text.startswith("@impl true\n  def handle_call(")
    assert first.text_edit.new_text.endswith("\n  end")
    assert first.filter_text == "handle_call"
    assert [i.label for i in callback_items(module, "  ", "def", RANGE)][:1] == ["def handle_call/3"]
    assert callback_items(module, "  ", "zzz", RANGE) == []


def test_local_items_list_own_private_and_kernel(tmp_path) -> None:
    from potion.elixir.docs import build_index

    (tmp_path / "kernel.ex").write_text(
        'defmodule Kernel do\n  @doc "Bumps?"\n  def bump_it(x), do: x\nend\n'
    )
    (tmp_path / "helpers.ex").write_text("defmodule MyApp.Helpers do\n  def bundle(a, b), do: {a, b}\nend\n")
    index = WorkspaceIndex([tmp_path], stdlib=build_index([tmp_path / "kernel.ex"]))
    index.scan()
    module = analyze(COUNTER).modules[0]
    items = local_items(index, module, "b", RANGE, snippets=True)
    assert [(i.label, i.sort_text) for i in items] == [
        ("bump/1", "0bump"),
        ("bundle/2", "1bundle"),
        ("bump_it/1", "2bump_it"),
    ]
    assert items[1].text_edit.new_text == "bundle(${1:a}, ${2:b})"
    assert items[1].insert_text_format == types.InsertTextFormat.Snippet
    plain = local_items(index, module, "bum", RANGE, snippets=False)
    assert [i.text_edit.new_text for i in plain] == ["bump", "bump_it"]


def test_params_of_signatures() -> None:
    assert _params("map(enumerable, fun)") == ["enumerable", "fun"]
    assert _params("retry(job, times \\\\ 3)") == ["job", "times"]
    assert _params("f(%{a: a}, [h | t])") == ["%{a: a}", "[h | t]"]
    assert _params("now()") == []
    assert _params("map/2") is None


def test_resolve_module() -> None:
    module = analyze(COUNTER).modules[0]
    assert resolve_module("S", module) == "MyApp.Store"
    assert resolve_module("S.Sub", module) == "MyApp.Store.Sub"
    assert resolve_module("__MODULE__", module) == "MyApp.Counter"
    assert resolve_module("Enum", module) == "Enum"
    assert resolve_module("Enum", None) == "Enum"


def test_snippet_placeholders_are_escaped() -> None:
    from lsp.features.elixir_completion import _function_item
    from lsp.workspace_index import FunctionInfo

    fn = FunctionInfo("M", "f", (2,), "def", "f(%{a: a}, $x)", None, None, "open")
    item = _function_item(fn, RANGE, snippets=True)
    assert item.text_edit.new_text == "f(${1:%{a: a\\}}, ${2:\\$x})"


def test_attribute_items() -> None:
    from lsp.features.elixir_completion import attribute_items

    items = attribute_items("do", RANGE, in_function=False)
    assert [i.label for i in items] == ["@doc"]
    assert items[0].text_edit.new_text == "doc"  # the `@` typed stays
    assert {"@spec", "@impl", "@behaviour"} <= {
        i.label for i in attribute_items("", RANGE, in_function=False)
    }
    assert attribute_items("do", RANGE, in_function=True) == []


PLUGIN_BEHAVIOUR = """defmodule MyApp.Plugin do
  @callback init(opts :: keyword()) :: {:ok, term} | {:error, term}
  @callback handle(event :: map(), state :: term) ::
              {:ok, term}
  @callback name() :: String.t()
  @callback version :: pos_integer
  @macrocallback dsl(term) :: Macro.t()
  @optional_callbacks version: 0, dsl: 1
end
"""


def test_parse_callbacks_of_a_custom_behaviour() -> None:
    from lsp.callbacks import parse_callbacks

    found = parse_callbacks("MyApp.Plugin", PLUGIN_BEHAVIOUR)
    assert [(c.key, c.required) for c in found] == [
        ("init/1", True),
        ("handle/2", True),
        ("name/0", True),
        ("version/0", False),
        ("dsl/1", False),
    ]
    assert callback_code(found[1], "") == (
        "@impl true\ndef handle(_event, _state) do\n"
        '  raise "MyApp.Plugin.handle/2 is not implemented yet"\nend\n'
    )
    assert found[4].body.startswith("def dsl(_arg1)")


def test_missing_callbacks_of_a_custom_behaviour(tmp_path) -> None:
    (tmp_path / "plugin.ex").write_text(PLUGIN_BEHAVIOUR)
    index = WorkspaceIndex([tmp_path], stdlib=False)
    index.scan()
    source = 'defmodule MyApp.Echo do\n  @behaviour MyApp.Plugin\n  def name, do: "echo"\nend\n'
    module = analyze(source).modules[0]
    known = index.known_callbacks(module)
    assert [cb.key for cb in missing_callbacks(module, known=known, required_only=True)] == [
        "init/1",
        "handle/2",
    ]
    # Unknown behaviours stay unknown; the built-in table is untouched.
    assert index.known_callbacks(analyze("defmodule X do\n  @behaviour Nope\nend\n").modules[0]) is CALLBACKS
