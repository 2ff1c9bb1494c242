"""SupervisedLlamaCpp on the real default model: KV prefix reuse, streaming, stop, cancellation and
errors across the pipe, and a worker killed mid-stream replaced by one that answers. One model load
(plus one restart) for the whole module."""

from __future__ import annotations

import os
import signal

import pytest

from potion.backends import Backend, CancelToken, SupervisedLlamaCpp
from potion.backends.supervised import Backoff
from potion.errors import ContextOverflow, WorkerCrashed

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

FIM_STOP = ["<|endoftext|>", "<|file_sep|>"]


@pytest.fixture(scope="module")
def backend() -> SupervisedLlamaCpp:
    from potion import registry

    # One thread: on a busy machine llama.cpp's spinning threads slow each other down tenfold.
    b = SupervisedLlamaCpp(registry.resolve(), n_ctx=2048, n_threads=1, backoff=Backoff(first=0.05))
    yield b
    b.close()


def elixir_module(n: int, edit: str = "") -> str:
    body = "".join(f"  def add_{i}(x), do: x + {i}\n\n" for i in range(n))
    head = f"<|fim_prefix|>defmodule Demo.Math do\n{body}{edit}  def double(x) do\n    "
    return head + "<|fim_suffix|>\n  end\nend\n<|fim_middle|>"


def test_it_is_a_backend_and_reuses_the_kv_prefix_inside_the_worker(backend: SupervisedLlamaCpp) -> None:
    assert isinstance(backend, Backend)
    assert backend.info.family == "qwen2.5-coder" and backend.tokenize("<|fim_prefix|>") == [151659]
    first = elixir_module(30)
    list(backend.complete(first, max_tokens=4, stop=FIM_STOP))
    assert backend.last_stats.evaluated_prompt_tokens == backend.last_stats.prompt_tokens > 300
    list(backend.complete(elixir_module(30, edit="  # doubles\n"), max_tokens=4, stop=FIM_STOP))
    assert 0 < backend.last_stats.evaluated_prompt_tokens < 40
    list(backend.complete(elixir_module(30, edit="  # doubles\n"), max_tokens=4, stop=FIM_STOP))
    assert backend.last_stats.evaluated_prompt_tokens == 1


def test_streams_in_order_honours_stop_and_cancel(backend: SupervisedLlamaCpp) -> None:
    prompt = "defmodule Counter do\n  use GenServer\n\n  def start_link(arg) do\n"
    pieces = list(backend.complete(prompt, max_tokens=24))
    assert len(pieces) > 3 and backend.last_stats.completion_tokens == 24
    text = "".join(pieces)
    stop_at = text.strip().split()[1]
    cut = "".join(backend.complete(prompt, max_tokens=24, stop=[stop_at]))
    assert stop_at not in cut and text.startswith(cut)

    cancel = CancelToken()
    got = []
    for piece in backend.complete(prompt, max_tokens=200, cancel=cancel):
        got.append(piece)
        cancel.set()
    assert len(got) == 1 and backend.last_stats.cancelled
    assert "".join(backend.complete(prompt, max_tokens=24)) == text  # the worker stopped and serves on


def test_indent_reaches_the_worker(backend: SupervisedLlamaCpp) -> None:
    prompt = (
        "<|fim_prefix|>defmodule Shapes do\n  def area(shape) do\n    case shape do\n"
        "      {:square, side} -> side * side\n<|fim_suffix|>\n    end\n  end\nend\n<|fim_middle|>"
    )
    text = "".join(backend.complete(prompt, max_tokens=8, stop=FIM_STOP, indent="      "))
    assert text.startswith("      ") and not text[6].isspace(), repr(text)


def test_errors_cross_the_pipe_with_their_class(backend: SupervisedLlamaCpp) -> None:
    with pytest.raises(ContextOverflow, match="context holds 2048"):
        list(backend.complete("x = 1\n" * 3000))
    prompt, stop = backend.chat_prompt([{"role": "user", "content": "hi"}])
    assert prompt.endswith("<|im_start|>assistant\n") and "<|im_end|>" in stop
    reply = "".join(
        backend.chat([{"role": "user", "content": "Which OTP behaviour keeps state?"}], max_tokens=16)
    )
    assert reply.strip() and "<|im_end|>" not in reply


def test_a_worker_killed_mid_stream_is_replaced_and_the_next_request_answered(
    backend: SupervisedLlamaCpp,
) -> None:
    prompt = "defmodule Stack do\n  use GenServer\n"
    expected = "".join(backend.complete(prompt, max_tokens=8))
    stream = backend.complete(prompt, max_tokens=200)
    next(stream)
    starts = backend.starts
    os.kill(backend.worker_pid, signal.SIGKILL)
    with pytest.raises(WorkerCrashed, match=r"killed \(SIGKILL\) while generating"):
        list(stream)
    assert "".join(backend.complete(prompt, max_tokens=8)) == expected
    assert backend.starts == starts + 1
    assert backend.last_stats.evaluated_prompt_tokens == backend.last_stats.prompt_tokens  # a fresh cache
