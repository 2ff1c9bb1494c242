"""LlamaCppBackend on the real default model: KV reuse counted in tokens, streaming, cancel, locking."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from potion.backends import Backend, CancelToken, LlamaCppBackend
from potion.errors import BackendError, ContextOverflow, ModelCorrupt

pytestmark = pytest.mark.e2e

FIM_STOP = ["<|endoftext|>", "<|file_sep|>"]


@pytest.fixture(scope="module")
def backend() -> LlamaCppBackend:
    from potion import registry

    b = LlamaCppBackend(registry.resolve(), n_ctx=2048)
    yield b
    b.close()


def elixir_module(n: int, edit: str = "") -> str:
    body = "".join(
        f'  @doc "Returns {i} plus the argument."\n  def add_{i}(x), do: x + {i}\n\n' for i in range(n)
    )
    head = f"<|fim_prefix|>defmodule Demo.Math do\n{body}{edit}  def double(x) do\n    "
    return head + "<|fim_suffix|>\n  end\nend\n<|fim_middle|>"


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def test_it_is_a_backend_and_reads_the_model(backend: LlamaCppBackend) -> None:
    assert isinstance(backend, Backend)
    info = backend.info
    assert info.family == "qwen2.5-coder" and info.n_ctx == 2048
    assert info.fim_tokens["middle"] == "<|fim_middle|>"
    assert info.chat_template and "<|im_start|>" in info.chat_template
    assert backend.tokenize("<|fim_prefix|>") == [151659]  # special tokens are parsed


def test_a_one_line_edit_near_the_end_evaluates_only_the_tokens_after_it(backend: LlamaCppBackend) -> None:
    first = elixir_module(20)
    list(backend.complete(first, max_tokens=4, stop=FIM_STOP))
    assert backend.last_stats.evaluated_prompt_tokens == backend.last_stats.prompt_tokens > 400

    edited = elixir_module(20, edit="  # doubles\n")
    list(backend.complete(edited, max_tokens=4, stop=FIM_STOP))
    old, new = backend._prompt_tokens(first), backend._prompt_tokens(edited)
    stats = backend.last_stats
    assert stats.prompt_tokens == len(new)
    assert stats.evaluated_prompt_tokens == len(new) - common_prefix(old, new)
    assert stats.evaluated_prompt_tokens < 40

    # the very same prompt again: only the last token is re-run, to get fresh logits
    list(backend.complete(edited, max_tokens=4, stop=FIM_STOP))
    assert backend.last_stats.evaluated_prompt_tokens == 1


def test_reuse_gives_the_same_answer_as_a_cold_start(backend: LlamaCppBackend, tmp_path: Path) -> None:
    prompt = elixir_module(5)
    warm = "".join(backend.complete(prompt, max_tokens=12, stop=FIM_STOP))
    assert backend.last_stats.evaluated_prompt_tokens < backend.last_stats.prompt_tokens
    cold_backend = LlamaCppBackend(backend.model_path, n_ctx=2048)
    try:
        cold = "".join(cold_backend.complete(prompt, max_tokens=12, stop=FIM_STOP))
        assert cold_backend.last_stats.evaluated_prompt_tokens == cold_backend.last_stats.prompt_tokens
    finally:
        cold_backend.close()
    assert warm == cold and warm.strip()


def test_streams_piece_by_piece_and_honours_stop(backend: LlamaCppBackend) -> None:
    prompt = "defmodule Counter do\n  use GenServer\n\n  def start_link(arg) do\n"
    pieces = list(backend.complete(prompt, max_tokens=24, stop=[]))
    assert len(pieces) > 3 and backend.last_stats.completion_tokens == 24
    text = "".join(pieces)
    stop_at = text.strip().split()[1]  # a word the model will write again
    cut = "".join(backend.complete(prompt, max_tokens=24, stop=[stop_at]))
    assert stop_at not in cut and text.startswith(cut)


# The cursor on an empty line inside a `case`, its indentation left out of the prompt (strip_indent).
CASE_PROMPT = (
    "<|fim_prefix|>defmodule Shapes do\n  def area(shape) do\n    case shape do\n"
    "      {:square, side} -> side * side\n<|fim_suffix|>\n    end\n  end\nend\n<|fim_middle|>"
)


@pytest.mark.parametrize("indent", ["      ", "\t\t"])
def test_indent_heals_the_left_out_indentation(backend: LlamaCppBackend, indent: str) -> None:
    for temperature in (0.0, 0.8):
        text = "".join(
            backend.complete(
                CASE_PROMPT, max_tokens=12, stop=FIM_STOP, temperature=temperature, indent=indent
            )
        )
        assert text.startswith(indent) and text[len(indent)] not in " \t\r\n", repr(text)
    free = "".join(backend.complete(CASE_PROMPT, max_tokens=12, stop=FIM_STOP))
    assert free.strip()  # the constraint leaves the backend serving unconstrained prompts as before


def test_cancel_before_and_during_generation(backend: LlamaCppBackend) -> None:
    cancel = CancelToken()
    cancel.set()
    assert list(backend.complete("def hello", cancel=cancel)) == []
    assert backend.last_stats.cancelled

    cancel = CancelToken()
    got = []
    for piece in backend.complete("defmodule A do\n", max_tokens=50, cancel=cancel):
        got.append(piece)
        cancel.set()
    assert len(got) == 1 and backend.last_stats.cancelled


def test_closing_a_stream_early_leaves_the_backend_usable(backend: LlamaCppBackend) -> None:
    stream = backend.complete("defmodule A do\n", max_tokens=50)
    next(stream)
    with pytest.raises(BackendError, match="still open"):  # same thread: would deadlock otherwise
        next(backend.complete("x"))
    stream.close()
    assert "".join(backend.complete("defmodule A do\n", max_tokens=3))


def test_one_generation_at_a_time_across_threads(backend: LlamaCppBackend) -> None:
    prompts = ["def a(x), do:", "def b(y), do:", "def c(z), do:"]
    expected = ["".join(backend.complete(p, max_tokens=6)) for p in prompts]
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = "".join(backend.complete(prompts[i], max_tokens=6))
        except BaseException as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and [results[i] for i in range(3)] == expected


def test_multibyte_text_is_never_split(backend: LlamaCppBackend) -> None:
    prompt = "# 果物: 🍎🍌🍇🍓🍎🍌🍇🍓🍎🍌🍇🍓\n# 日本語のコメント: こんにちは、世界。こんにちは、"
    pieces = list(backend.complete(prompt, max_tokens=24))
    text = "".join(pieces)
    assert "\ufffd" not in text and any(ord(ch) > 127 for ch in text)


def test_chat_uses_the_models_template(backend: LlamaCppBackend) -> None:
    prompt, stop = backend.chat_prompt([{"role": "user", "content": "hi"}])
    assert prompt.endswith("<|im_start|>assistant\n") and "<|im_start|>user\nhi<|im_end|>" in prompt
    assert "<|im_end|>" in stop
    reply = "".join(
        backend.chat([{"role": "user", "content": "Which OTP behaviour keeps state?"}], max_tokens=24)
    )
    assert reply.strip() and "<|im_end|>" not in reply


def test_prompt_longer_than_the_context_is_a_clear_error(backend: LlamaCppBackend) -> None:
    with pytest.raises(ContextOverflow, match="context holds 2048"):
        list(backend.complete("x = 1\n" * 3000))
    assert "".join(backend.complete("def f", max_tokens=2))  # still fine afterwards


def test_truncated_model_is_reported_not_crashed(backend: LlamaCppBackend, tmp_path: Path) -> None:
    truncated = tmp_path / "cut.gguf"
    with backend.model_path.open("rb") as src, truncated.open("wb") as dst:
        dst.write(src.read(9 << 20))  # the header and a little of the weights
    with pytest.raises(ModelCorrupt, match="truncated"):
        LlamaCppBackend(truncated).load()
