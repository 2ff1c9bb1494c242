# Ground truth for potion.elixir: the public name/arity of every module in the given files, as Elixir's own
# parser sees them. Usage: elixir scripts/public_defs.exs FILE...
#
# Walks `Code.string_to_quoted!/2` ASTs (no compilation, so no macro expansion): `defmodule`/`defprotocol`/
# `defimpl` open modules (nested names are joined), `def`/`defmacro`/`defguard`/`defdelegate` are public
# (`@doc false` ones included: they are still callable), default arguments give arity ranges. Nothing inside
# `quote` counts, and names built with `unquote` are skipped (only a compiler run could know them).
# Output, one record a line (Elixir 1.14 has no JSON):  M<TAB>Module   F<TAB>Module<TAB>name<TAB>arity
#                                                         E<TAB>path<TAB>message
defmodule PublicDefs do
  @public [:def, :defmacro, :defguard, :defdelegate]
  @private [:defp, :defmacrop, :defguardp]

  def run(paths) do
    Enum.each(paths, fn path ->
      try do
        path |> File.read!() |> Code.string_to_quoted!(file: path) |> walk(nil)
      rescue
        e -> IO.puts("E\t#{path}\t#{e |> Exception.message() |> String.replace(~r/\s+/, " ")}")
      end
    end)
  end

  defp walk({:quote, _, _}, _mod), do: :ok

  defp walk({kind, _, [name | rest]}, mod) when kind in [:defmodule, :defprotocol] do
    case module_name(name, mod) do
      nil -> :ok
      full -> open(full, rest, mod)
    end
  end

  defp walk({:defimpl, _, [proto | rest]}, mod) do
    opts = Enum.flat_map(rest, fn r -> if is_list(r), do: r, else: [] end)
    targets = Keyword.get(opts, :for, {:__MODULE__, [], nil})
    targets = if is_list(targets), do: targets, else: [targets]
    proto_name = expand(module_name(proto, nil), mod)

    for t <- targets, proto_name != nil, tn = module_name(t, mod, false), tn != nil do
      open(proto_name <> "." <> tn, rest)
    end

    :ok
  end

  defp walk({kind, _, [head | _]}, mod) when kind in @public and mod != nil do
    case signature(head) do
      {name, arity, defaults} ->
        for a <- (arity - defaults)..arity, do: IO.puts("F\t#{mod}\t#{name}\t#{a}")

      nil ->
        :ok
    end
  end

  # Aliases matter for `defimpl Proto` (a nested or aliased protocol): track them per module.
  defp walk({:alias, _, [{:__aliases__, _, parts} = ast | opts]}, mod) when mod != nil do
    if Enum.all?(parts, &is_atom/1) do
      full = expand(module_name(ast, mod, false), mod)
      short =
        case opts do
          [[as: {:__aliases__, _, [as]}]] -> Atom.to_string(as)
          _ -> full |> String.split(".") |> List.last()
        end

      Process.put({:alias, mod, short}, full)
    end
  end

  defp walk({kind, _, _}, _mod) when kind in @private, do: :ok
  defp walk({kind, _, _}, _mod) when kind in @public, do: :ok

  defp walk({a, _, b}, mod) do
    walk(a, mod)
    if is_list(b), do: walk(b, mod)
  end

  defp walk({a, b}, mod) do
    walk(a, mod)
    walk(b, mod)
  end
  defp walk(list, mod) when is_list(list), do: Enum.each(list, &walk(&1, mod))
  defp walk(_, _), do: :ok

  defp open(full, rest, parent \\ nil) do
    IO.puts("M\t#{full}")

    if parent != nil and String.starts_with?(full, parent <> ".") do
      head = full |> String.replace_prefix(parent <> ".", "") |> String.split(".") |> hd()
      Process.put({:alias, parent, head}, parent <> "." <> head)
    end

    Enum.each(rest, fn
      opts when is_list(opts) -> opts |> Keyword.get(:do) |> walk(full)
      _ -> :ok
    end)
  end

  # `defmodule Bar` inside `Foo` is `Foo.Bar`; `__MODULE__.Bar` is relative to the current module.
  defp module_name(ast, parent, nest \\ true)

  defp module_name({:__aliases__, _, [{:__MODULE__, _, _} | rest]}, parent, _nest) when parent != nil do
    join([parent | Enum.map(rest, &Atom.to_string/1)])
  end

  defp module_name({:__aliases__, _, parts}, parent, nest) do
    if Enum.all?(parts, &is_atom/1) do
      names = Enum.map(parts, &Atom.to_string/1)

      case names do
        ["Elixir" | rest] -> join(rest)
        _ when nest and parent != nil -> join([parent | names])
        _ -> join(names)
      end
    end
  end

  defp module_name({:__MODULE__, _, _}, parent, _nest), do: parent
  defp module_name(_, _, _), do: nil

  # `Bar.Baz` where `Bar` is an alias visible in `mod`.
  defp expand(nil, _mod), do: nil
  defp expand(name, nil), do: name

  defp expand(name, mod) do
    [head | rest] = String.split(name, ".")

    case Process.get({:alias, mod, head}) do
      nil -> name
      full -> Enum.join([full | rest], ".")
    end
  end

  defp join([]), do: nil
  defp join(parts), do: Enum.join(parts, ".")

  defp signature({:when, _, [head | _]}), do: signature(head)

  defp signature({name, _, args}) when is_atom(name) and name not in [:unquote, :unquote_splicing] do
    args = if is_list(args), do: args, else: []

    if Enum.any?(args, &match?({:unquote_splicing, _, _}, &1)) do
      nil
    else
      {name, length(args), Enum.count(args, &match?({:\\, _, _}, &1))}
    end
  end

  defp signature(_), do: nil
end

PublicDefs.run(System.argv())
