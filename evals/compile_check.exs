# Does each file still compile after an infill?   elixir compile_check.exs RESULT_FILE FILE...
# Per file: "ok\tI", "syntax\tI\tMESSAGE" (Elixir's parser refuses it) or "compile\tI\tMESSAGE"
# (parses, but does not compile here: undefined functions, bad macros, missing modules).
# Each compile runs in its own process with a time limit; module conflicts are expected (the files
# redefine modules of the running Elixir, e.g. Mix's own) and ignored.

[result_path | files] = System.argv()
Code.put_compiler_option(:ignore_module_conflict, true)
Logger.configure(level: :none)
Application.ensure_all_started(:ex_unit)

out = fn fields ->
  text = fields |> Enum.map(&(&1 |> to_string() |> String.replace(["\t", "\n"], " ") |> String.slice(0, 200)))
  File.write!(result_path, Enum.join(text, "\t") <> "\n", [:append])
end

files
|> Enum.with_index()
|> Enum.each(fn {file, index} ->
  source = File.read!(file)

  case Code.string_to_quoted(source, file: file) do
    {:error, {_meta, message, token}} ->
      out.(["syntax", index, "#{inspect(message)} #{token}"])

    {:ok, _ast} ->
      task =
        Task.async(fn ->
          try do
            ExUnit.CaptureIO.capture_io(:stderr, fn -> Code.compile_string(source, file) end)
            :ok
          rescue
            error -> {:error, Exception.message(error) |> String.split("\n") |> hd()}
          catch
            kind, reason -> {:error, "#{kind}: #{inspect(reason)}"}
          end
        end)

      case Task.yield(task, 10_000) || Task.shutdown(task, :brutal_kill) do
        {:ok, :ok} -> out.(["ok", index])
        {:ok, {:error, message}} -> out.(["compile", index, message])
        _ -> out.(["compile", index, "compile did not finish in 10 s"])
      end
  end
end)

out.(["done"])
System.halt(0)
