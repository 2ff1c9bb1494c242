"""potion.elixir.analyze: modules, functions, attributes, and what is *not* a definition."""

from __future__ import annotations

from potion.elixir import analyze, is_balanced

SOURCE = '''\
defmodule MyApp.Server do
  @moduledoc """
  Serves things.

  More details.
  """
  use GenServer
  alias MyApp.{Repo, Cache}
  alias MyApp.Accounts.User, as: U
  import Enum, only: [map: 2]
  require Logger
  @behaviour MyApp.Behaviour

  @doc "Starts it."
  @spec start_link(keyword()) :: GenServer.on_start()
  def start_link(opts \\\\ []), do: GenServer.start_link(__MODULE__, opts)

  @doc false
  def hidden, do: :ok

  @impl true
  def init(state) when is_map(state) do
    {:ok, state}
  end

  def init(_other), do: {:ok, %{}}

  @impl GenServer
  def handle_call(:get, _from, %{} = state), do: {:reply, state, state}

  defp helper(a, b \\\\ 1, c \\\\ 2), do: a + b + c
  defmacro my_macro(x), do: x
  defmacrop private_macro(x), do: x
  defguard is_small(x) when x < 10
  defguardp is_tiny(x) when x < 2
  defdelegate fetch(map, key), to: Map
  def left <~> right, do: {left, right}

  @spec bodiless(term(), term()) :: term()
  def bodiless(a, b \\\\ nil)
  def bodiless(a, nil), do: a
  def bodiless(a, b), do: {a, b}

  @deprecated "Use start_link/1"
  def start, do: start_link()

  defmodule Inner do
    @moduledoc false
    def inner_fun, do: :inner
  end

  def uses_inner, do: Inner.inner_fun()
end
'''


def test_modules_nested_names_and_directives() -> None:
    a = analyze(SOURCE, path="lib/server.ex")
    assert [m.name for m in a.modules] == ["MyApp.Server", "MyApp.Server.Inner"]
    assert a.errors == []
    server = a.module("MyApp.Server")
    assert server.moduledoc == "Serves things.\n\nMore details."
    assert server.uses == ["GenServer"]
    assert server.behaviours == ["GenServer", "MyApp.Behaviour"]
    assert server.aliases == {
        "Repo": "MyApp.Repo",
        "Cache": "MyApp.Cache",
        "U": "MyApp.Accounts.User",
        "Inner": "MyApp.Server.Inner",
    }
    assert server.imports == ["Enum"] and server.requires == ["Logger"]
    assert server.children == ["MyApp.Server.Inner"]
    inner = a.module("MyApp.Server.Inner")
    assert inner.parent == "MyApp.Server" and inner.moduledoc_hidden
    assert [f.name for f in inner.functions] == ["inner_fun"]
    assert (server.line, server.end_line) == (0, SOURCE.count("\n") - 1)


def test_functions_kinds_arities_clauses_and_attributes() -> None:
    server = analyze(SOURCE).module("MyApp.Server")
    by = {(f.name, f.arity): f for f in server.functions}
    start = by[("start_link", 1)]
    assert start.arities == range(0, 2) and start.doc == "Starts it."
    assert start.spec == "start_link(keyword()) :: GenServer.on_start()"
    assert start.signature() == "start_link(opts \\\\ [])"
    assert by[("hidden", 0)].doc_hidden and by[("hidden", 0)].doc is None
    init = by[("init", 1)]
    assert len(init.clauses) == 2 and init.impl is True
    assert init.clauses[0].guard == "is_map(state)" and init.clauses[1].guard is None
    assert by[("handle_call", 3)].impl == "GenServer"
    assert by[("handle_call", 3)].params == [":get", "_from", "state"]
    assert by[("helper", 3)].kind == "defp" and by[("helper", 3)].arities == range(1, 4)
    assert not by[("helper", 3)].public
    assert by[("my_macro", 1)].kind == "defmacro" and by[("my_macro", 1)].macro
    assert by[("private_macro", 1)].kind == "defmacrop"
    assert by[("is_small", 1)].kind == "defguard" and by[("is_tiny", 1)].kind == "defguardp"
    assert by[("fetch", 2)].kind == "defdelegate"
    assert by[("<~>", 2)].kind == "def"
    bodiless = by[("bodiless", 2)]
    assert bodiless.arities == range(1, 3) and len(bodiless.clauses) == 3
    assert bodiless.spec == "bodiless(term(), term()) :: term()"
    assert by[("start", 0)].deprecated == "Use start_link/1"
    assert server.public_arities() >= {("start_link", 0), ("start_link", 1), ("bodiless", 1), ("fetch", 2)}
    assert ("helper", 1) not in server.public_arities()


def test_quote_strings_sigils_and_unquote_are_not_definitions() -> None:
    source = '''
defmodule Gen do
  defmacro __using__(_opts) do
    quote do
      def injected, do: :no
      defmodule Hidden do
      end
    end
  end

  @doc ~S"""
  Example:

      def not_a_def(x), do: x
  """
  def real(x), do: "def fake(y), do: #{x}"

  for name <- [:a, :b] do
    def unquote(name)(), do: unquote(name)
  end

  def spliced(unquote_splicing(args)), do: :ok
  @x ~w(def also_not)
end
'''
    gen = analyze(source).module("Gen")
    assert {(f.name, f.arity) for f in gen.functions} == {("__using__", 1), ("real", 1)}
    assert gen.function("real").doc == "Example:\n\n    def not_a_def(x), do: x"
    assert [m.name for m in analyze(source).modules] == ["Gen"]


def test_protocols_impls_and_module_name_forms() -> None:
    source = """
defprotocol Size do
  def size(data)
end
defimpl Size, for: [Map, List] do
  def size(x), do: length(x)
end
defmodule Outer do
  defmodule __MODULE__.Sub do
    def s, do: 1
  end
  defmodule Elixir.Top do
  end
  defimpl Size do
    def size(_), do: 0
  end
end
"""
    a = analyze(source)
    assert [m.name for m in a.modules] == [
        "Size",
        "Size.Map",
        "Size.List",
        "Outer",
        "Outer.Sub",
        "Top",
        "Size.Outer",
    ]
    assert a.module("Size").kind == "defprotocol" and a.module("Size.Map").kind == "defimpl"
    assert a.public_arities()["Size.List"] == {("size", 1)}


def test_partial_code_keeps_modules_and_function_at_cursor() -> None:
    source = 'defmodule Foo do\n  alias Foo.Bar\n  @doc "x"\n  def bar(x) do\n    x +\n'
    a = analyze(source)
    assert a.has_errors
    foo = a.module("Foo")
    assert foo is not None and foo.aliases == {"Bar": "Foo.Bar"}
    bar = foo.function("bar", 1)
    assert bar is not None and bar.doc == "x"
    from potion.elixir import scope_at

    scope = scope_at(a, 4, 7)
    assert scope.module_name == "Foo" and scope.function is bar


def test_missing_end_is_reported_and_later_defs_still_found() -> None:
    source = (
        "defmodule Foo do\n  def a(x) do\n    case x do\n      1 ->\n  end\n"
        "  def b(y) do\n    y\n  end\nend\n"
    )
    a = analyze(source)
    assert any(e.missing and "end" in e.message for e in a.errors)
    assert {f.name for f in a.module("Foo").functions} == {"a", "b"}


def test_crlf_bom_invalid_utf8_and_never_raises() -> None:
    crlf = 'defmodule W do\r\n  @doc """\r\n  Hi\r\n  there\r\n  """\r\n  def w(a), do: a\r\nend\r\n'
    a = analyze(crlf)
    assert a.errors == [] and a.module("W").function("w").doc == "Hi\nthere"
    bom = analyze(b"\xef\xbb\xbfdefmodule B do\n  def b, do: 1\nend\n")
    assert bom.errors == [] and bom.module("B").function("b") is not None
    bad = analyze(b'defmodule U do\n  def u, do: "\xff\xfe"\n  def v(\xc3), do: 1\nend\n')
    assert bad.module("U").function("u") is not None
    for junk in [
        "",
        "end end end",
        "defmodule",
        "def",
        "@doc",
        "defmodule do end",
        "def (",
        '"""',
        "\x00\x01",
    ]:
        analyze(junk)  # must not raise
    assert analyze("").modules == []


def test_large_and_deeply_nested_files() -> None:
    body = "".join(f"  def f{i}(x), do: x + {i}\n" for i in range(10_000))
    big = analyze("defmodule Big do\n" + body + "end\n")
    assert len(big.module("Big").functions) == 10_000
    deep = "defmodule Deep do\n  def d, do: " + "[" * 5000 + "]" * 5000 + "\n  def e, do: 1\nend\n"
    a = analyze(deep)
    assert {f.name for f in a.module("Deep").functions} == {"d", "e"}
    unclosed = analyze("defmodule Deep do\n  def d, do: " + "(" * 3000)
    assert unclosed.has_errors and unclosed.module("Deep") is not None


def test_is_balanced() -> None:
    assert is_balanced("def f(x) do\n  x\nend\n")
    assert is_balanced("Enum.map(list, fn x -> x * 2 end)")
    assert not is_balanced("def f(x) do\n  x\n")
    assert not is_balanced("Enum.map(list, fn x -> x")
    assert not is_balanced("[1, 2")
    assert is_balanced("")
