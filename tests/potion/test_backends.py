"""Backend plumbing that needs no model: stop matching, open_backend, llama.cpp error paths."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from potion.backends import (
    Backend,
    CancelToken,
    FakeBackend,
    LlamaCppBackend,
    OpenAIBackend,
    SupervisedLlamaCpp,
    open_backend,
)
from potion.backends.stops import StopMatcher
from potion.errors import BackendUnavailable, ModelCorrupt, ModelNotFound


def feed_all(stop: list[str], pieces: list[str]) -> tuple[str, bool]:
    matcher = StopMatcher(stop)
    out = "".join(matcher.feed(p) for p in pieces)
    return out + matcher.flush(), matcher.stopped


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (["abc", "<|file_sep|>", "def"], ("abc", True)),
        (["abc<|fi", "le_sep|>def"], ("abc", True)),  # split across pieces
        (["a", "<", "|", "f", "i", "l", "e", "_sep|>"], ("a", True)),  # one character at a time
        (["abc<|fi", "nal"], ("abc<|final", False)),  # looked like a stop, was not: nothing lost
        (["x\n\n", "y"], ("x", True)),
        (["tail <|fi"], ("tail <|fi", False)),  # stream ended on a partial stop: flushed
    ],
)
def test_stop_matcher(pieces: list[str], expected: tuple[str, bool]) -> None:
    assert feed_all(["<|file_sep|>", "\n\n"], pieces) == expected


def test_stop_matcher_holds_back_only_possible_stops() -> None:
    matcher = StopMatcher(["END"])
    assert matcher.feed("hello E") == "hello "
    assert matcher.feed("ND more") == ""
    assert matcher.stopped and matcher.feed("ignored") == "" and matcher.flush() == ""
    assert StopMatcher([]).feed("anything") == "anything"
    assert StopMatcher(["", "Z"]).feed("abc") == "abc"  # empty stop strings are ignored


def test_open_backend_with_url_is_http_and_lazy() -> None:
    # Nothing listens on port 9: constructing and reading `info` must not contact the server.
    backend = open_backend("qwen2.5-coder:7b", url="http://127.0.0.1:9/v1")
    assert isinstance(backend, OpenAIBackend)
    assert backend.base_url == "http://127.0.0.1:9" and backend.model == "qwen2.5-coder:7b"
    assert backend.info.family == "qwen2.5-coder" and backend.info.n_ctx == 4096  # provisional
    with pytest.raises(BackendUnavailable):
        backend.load()


def drive(backend: Backend) -> tuple[str, str, list[int]]:
    """Everything a caller of the Backend protocol does: load, complete, chat, tokenize, stats, close."""
    backend.load()
    try:
        completed = "".join(backend.complete("x = ", max_tokens=8, stop=["\n\n"], cancel=CancelToken()))
        answered = "".join(backend.chat([{"role": "user", "content": "hi"}], max_tokens=8))
        tokens = backend.tokenize("abc")
        assert backend.last_stats.completion_tokens >= 1 and backend.info.n_ctx > 0
    finally:
        backend.close()
    return completed, answered, tokens


def test_openai_backend_works_through_the_protocol() -> None:
    from fakes_openai import FakeOpenAIServer

    with FakeOpenAIServer(pieces=["def", " x"], tokenize=True) as server:
        completed, answered, tokens = drive(OpenAIBackend(server.url))
    assert completed == "def x" and answered == "def x" and len(tokens) == 3


def test_fake_backend_works_through_the_protocol() -> None:
    completed, answered, tokens = drive(FakeBackend("def x"))
    assert completed == "def x" and answered == "def x" and tokens


def test_open_backend_resolves_a_local_gguf_without_loading_it(make_gguf) -> None:
    path = make_gguf("tiny.gguf", metadata={"general.architecture": "qwen2"}, tensors=[("t", [32], 0)])
    backend = open_backend(str(path), n_ctx=512)
    assert isinstance(backend, SupervisedLlamaCpp)  # llama.cpp in a worker process it supervises
    assert backend.model_path == path and backend.n_ctx == 512 and backend.worker_pid is None
    assert backend.info.family == "unknown" and backend.info.n_ctx == 512  # from the header, still lazy
    assert backend.worker_pid is None and backend.starts == 0


def test_llamacpp_info_comes_from_the_gguf_header(make_gguf) -> None:
    tokens = ["a", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_sep|>"]
    path = make_gguf(
        "q.gguf",
        metadata={
            "general.architecture": "qwen2",
            "general.name": "Tiny Qwen",
            "tokenizer.ggml.tokens": tokens,
            "tokenizer.chat_template": "{{ x }}",
        },
    )
    info = LlamaCppBackend(path, n_ctx=1024).info
    assert (info.name, info.family, info.n_ctx, info.chat_template) == (
        "Tiny Qwen",
        "qwen2.5-coder",
        1024,
        "{{ x }}",
    )
    assert info.fim_tokens == {
        "prefix": "<|fim_prefix|>",
        "suffix": "<|fim_suffix|>",
        "middle": "<|fim_middle|>",
    }


def test_open_backend_missing_model_is_a_registry_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound):
        open_backend(str(tmp_path / "nope.gguf"))


def test_llamacpp_missing_file_and_non_gguf(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound):
        LlamaCppBackend(tmp_path / "missing.gguf").load()
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(ModelCorrupt):
        LlamaCppBackend(junk).tokenize("x")


def test_llamacpp_without_llama_cpp_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    with pytest.raises(BackendUnavailable) as err:
        LlamaCppBackend(tmp_path / "m.gguf").load()
    assert "--url" in err.value.user_message()


def test_llamacpp_threads_default_to_usable_cores() -> None:
    from potion.backends.llamacpp import cpu_cores

    assert LlamaCppBackend("m.gguf").n_threads == cpu_cores() >= 1
    assert LlamaCppBackend("m.gguf", n_threads=3).n_threads == 3


@pytest.mark.parametrize(
    "module", ["potion.prompts", "potion.backends", "potion.backends.openai", "potion.commands.complete"]
)
def test_each_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr  # guards against import cycles between prompts and backends
