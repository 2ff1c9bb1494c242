"""`potion complete`: positions, bad input, streaming, trimming; CLI subprocess runs for the error paths."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakes_openai import FakeOpenAIServer

from potion.backends import FakeBackend, ModelInfo
from potion.commands.complete import CompleteArgs, complete, split_at
from potion.errors import InvalidSource
from potion.sources import read_text_source

REPO = Path(__file__).resolve().parents[2]
COUNTER = REPO / "examples" / "counter.ex"


class FlushCounter(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushes: list[str] = []

    def flush(self) -> None:
        self.flushes.append(self.getvalue())


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "potion.cli", "complete", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str, rc: int = 1) -> None:
    assert proc.returncode == rc, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("potion: error:"), proc.stderr
    for needle in needles:
        assert needle in lines[0]


# -- positions ---------------------------------------------------------------------------------------


def test_split_at_is_one_based_and_allows_the_end_of_line() -> None:
    text = "ab\n    \ncd"
    assert split_at(text, 1, 1) == ("", text)
    assert split_at(text, 2, 5) == ("ab\n    ", "\ncd")  # after the four spaces of the indented line
    assert split_at(text, 3, 3) == (text, "")  # one past the last character
    assert split_at("x\r\ny\r\n", 1, 2) == ("x", "\r\ny\r\n")  # CR is not a column
    assert split_at("a\n", 2, 1) == ("a\n", "")  # the empty line after a final newline


@pytest.mark.parametrize(
    ("line", "col", "needle"), [(4, 1, "--line 4"), (1, 4, "--col 4"), (2, 6, "--col 6")]
)
def test_split_at_out_of_range(line: int, col: int, needle: str) -> None:
    with pytest.raises(InvalidSource, match=needle):
        split_at("ab\n    \ncd", line, col)


def test_read_text_source_rejects_missing_binary_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(InvalidSource, match="no such file"):
        read_text_source(tmp_path / "nope.ex")
    with pytest.raises(InvalidSource, match="directory"):
        read_text_source(tmp_path)
    (tmp_path / "b.beam").write_bytes(b"FOR1\x00\x00\x01BEAM")
    with pytest.raises(InvalidSource, match="binary"):
        read_text_source(tmp_path / "b.beam")
    (tmp_path / "l.ex").write_bytes(b"caf\xe9\n")
    with pytest.raises(InvalidSource, match="not UTF-8"):
        read_text_source(tmp_path / "l.ex")


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [({"line": 0}, "--line"), ({"col": 0}, "--col"), ({"max_tokens": 0}, "--max-tokens")]
    + [({"context_tokens": 3}, "--context-tokens"), ({"url": "localhost:8080"}, "--url")],
)
def test_args_name_the_bad_flag(kwargs: dict, flag: str) -> None:
    base = {"file": "a.ex", "line": 1, "col": 1}
    with pytest.raises(ValueError, match=flag):
        CompleteArgs(**{**base, **kwargs})


# -- completion with a scripted backend --------------------------------------------------------------


def test_streams_each_piece_with_a_flush_and_builds_a_fim_prompt() -> None:
    backend = FakeBackend(["GenServer.call(__MODULE__, :increment)"])
    out = FlushCounter()
    assert complete(CompleteArgs(COUNTER, 14, 5), backend=backend, out=out) == 0
    assert out.getvalue() == "GenServer.call(__MODULE__, :increment)"
    assert len(out.flushes) >= 5 and out.flushes[-1] == out.getvalue()  # streamed, not buffered
    (prompt,) = backend.prompts
    assert prompt.startswith("<|file_sep|>") and str(COUNTER) in prompt.splitlines()[0]
    # the cursor's indentation is left to the model; the suffix starts right after the cursor
    assert "  def increment do\n<|fim_suffix|>\n  end\n" in prompt and prompt.endswith("<|fim_middle|>")
    assert not backend.loaded  # closed afterwards


def test_unknown_family_completes_without_fim_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    backend = FakeBackend(["1"], info=ModelInfo(name="plain-llm", family="unknown"))
    out = io.StringIO()
    complete(CompleteArgs(COUNTER, 14, 5), backend=backend, out=out)
    assert out.getvalue() == "1"
    assert "no fill-in-the-middle" in capsys.readouterr().err
    assert "<|fim_prefix|>" not in backend.prompts[0] and backend.prompts[0].endswith("  def increment do\n")


def test_through_a_fake_http_server_without_fim(tmp_path: Path) -> None:
    src = tmp_path / "a.ex"
    src.write_text("defmodule A do\n  def f, do: \nend\n")
    with FakeOpenAIServer(["1", "23"], model_id="llama3:8b") as server:
        proc = run_cli(str(src), "--line", "2", "--col", "14", "--url", server.url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "123"
    assert "warning" in proc.stderr and "fill-in-the-middle" in proc.stderr


# -- the CLI's error paths: one line, no traceback ---------------------------------------------------


def test_cli_missing_file() -> None:
    assert_one_line_error(run_cli("no/such/file.ex", "--line", "1", "--col", "1"), "no such file")


def test_cli_position_out_of_range() -> None:
    assert_one_line_error(run_cli(str(COUNTER), "--line", "99", "--col", "1"), "--line 99", "22 lines")
    assert_one_line_error(run_cli(str(COUNTER), "--line", "14", "--col", "9"), "--col 9", "--col 5")


def test_cli_bad_flag_value_exits_2_naming_it() -> None:
    assert_one_line_error(run_cli(str(COUNTER), "--line", "0", "--col", "1"), "--line", rc=2)


def test_cli_binary_file(tmp_path: Path) -> None:
    blob = tmp_path / "x.beam"
    blob.write_bytes(b"\x00\x01\x02")
    assert_one_line_error(run_cli(str(blob), "--line", "1", "--col", "1"), "binary")


def test_cli_missing_model(tmp_path: Path) -> None:
    proc = run_cli(str(COUNTER), "--line", "14", "--col", "5", "--model", str(tmp_path / "gone.gguf"))
    assert_one_line_error(proc)


def test_cli_truncated_model(tmp_path: Path, make_gguf) -> None:
    model = make_gguf("m.gguf", metadata={"general.architecture": "qwen2"}, tensors=[("w", [256, 64], 12)])
    model.write_bytes(model.read_bytes()[:-100])
    proc = run_cli(str(COUNTER), "--line", "14", "--col", "5", "--model", str(model))
    assert_one_line_error(proc, "truncated")


def test_cli_server_dropping_mid_stream(tmp_path: Path) -> None:
    with FakeOpenAIServer(["a", "b", "c"], mode="drop", drop_after=1, model_id="qwen2.5-coder:7b") as server:
        proc = run_cli(str(COUNTER), "--line", "14", "--col", "5", "--url", server.url)
    assert_one_line_error(proc, "dropped the connection mid-stream", server.url)
    assert proc.stdout == "a"  # what came before the drop was already shown


def test_cli_server_not_running() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run_cli(str(COUNTER), "--line", "14", "--col", "5", "--url", f"http://127.0.0.1:{port}")
    assert_one_line_error(proc, "cannot connect", "start the server")


@pytest.mark.e2e
def test_readme_demo_on_the_default_model() -> None:
    proc = run_cli("examples/counter.ex", "--line", "14", "--col", "5", "--max-tokens", "48")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() and "<|" not in proc.stdout
    assert "end\n\n  @impl" not in proc.stdout  # stopped before repeating the rest of the file
