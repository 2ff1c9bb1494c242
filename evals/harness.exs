# Runs generated Elixir programs and reports each one's outcome to a result file, one tab-separated line
# per event, so the Python side never has to parse ExUnit's human output.
#
#   elixir harness.exs RESULT_FILE PROGRAM...
#
# Per program: "loaded\tI" or "compile_error\tI\tMESSAGE" / "runtime_error\tI\tMESSAGE" while it is
# loaded, then per test "test\tI\tpassed|assertion|runtime|timeout\tMESSAGE", and "done" at the end.
# Programs are MultiPL-E style: solution code then ExUnit tests (their own `ExUnit.start()` is harmless).

[result_path | programs] = System.argv()
System.argv([])

defmodule PotionEval.Out do
  def line(fields) do
    text = fields |> Enum.map(&clean/1) |> Enum.join("\t")
    File.write!(:persistent_term.get(:potion_eval_result), text <> "\n", [:append])
  end

  defp clean(value) do
    value |> to_string() |> String.replace(["\t", "\n", "\r"], " ") |> String.slice(0, 300)
  end

  def message(kind, reason, stack) do
    Exception.format_banner(kind, reason, stack) |> String.split("\n") |> hd()
  end
end

defmodule PotionEval.Formatter do
  use GenServer

  def init(_opts), do: {:ok, nil}

  def handle_cast({:test_finished, %ExUnit.Test{} = test}, state) do
    index = Map.get(:persistent_term.get(:potion_eval_owners), test.module, -1)

    case test.state do
      nil ->
        PotionEval.Out.line(["test", index, "passed", test.name])

      {:failed, failures} ->
        {kind, reason, stack} = hd(failures)

        status =
          cond do
            match?(%ExUnit.AssertionError{}, reason) -> "assertion"
            match?(%ExUnit.TimeoutError{}, reason) -> "timeout"
            true -> "runtime"
          end

        message =
          case reason do
            %ExUnit.AssertionError{message: text} -> text
            _ -> PotionEval.Out.message(kind, reason, stack)
          end

        PotionEval.Out.line(["test", index, status, message])

      {:invalid, _module} ->
        PotionEval.Out.line(["test", index, "runtime", "setup_all failed"])

      _skipped_or_excluded ->
        :ok
    end

    {:noreply, state}
  end

  def handle_cast(_event, state), do: {:noreply, state}
end

:persistent_term.put(:potion_eval_result, result_path)
ExUnit.start(autorun: false, formatters: [PotionEval.Formatter], timeout: 10_000, max_cases: 1)

compile_errors = [SyntaxError, TokenMissingError, CompileError, Kernel.TypespecError]

owners =
  programs
  |> Enum.with_index()
  |> Enum.reduce(%{}, fn {program, index}, owners ->
    try do
      modules = Code.require_file(program) |> Enum.map(&elem(&1, 0))
      PotionEval.Out.line(["loaded", index])
      Enum.reduce(modules, owners, &Map.put(&2, &1, index))
    rescue
      error ->
        status =
          if error.__struct__ in compile_errors or
               String.ends_with?(inspect(error.__struct__), "DelimiterError"),
             do: "compile_error",
             else: "runtime_error"

        PotionEval.Out.line([status, index, PotionEval.Out.message(:error, error, __STACKTRACE__)])
        owners
    catch
      kind, reason ->
        PotionEval.Out.line(["runtime_error", index, PotionEval.Out.message(kind, reason, __STACKTRACE__)])
        owners
    end
  end)

:persistent_term.put(:potion_eval_owners, owners)
ExUnit.Server.modules_loaded()
ExUnit.run()
PotionEval.Out.line(["done"])
System.halt(0)
