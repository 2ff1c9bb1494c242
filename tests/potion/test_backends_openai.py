"""OpenAIBackend against a scripted local server (and once against the real llama_cpp.server)."""

from __future__ import annotations

import socket
import threading

import pytest
from fakes_openai import FakeOpenAIServer

from potion.backends import CancelToken, OpenAIBackend
from potion.errors import BackendError, BackendUnavailable

QWEN_SPECIALS = ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_sep|>")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_complete_streams_pieces_and_sends_an_openai_request() -> None:
    with FakeOpenAIServer(["def ", "x", "(", ")"]) as server:
        backend = OpenAIBackend(server.url + "/v1/", api_key="sekrit")
        pieces = list(backend.complete("prompt text", max_tokens=7, stop=["\n\n"], temperature=0.0))
    assert pieces == ["def ", "x", "(", ")"]
    (body,) = server.bodies("/v1/completions")
    assert body == {
        "prompt": "prompt text",
        "max_tokens": 7,
        "temperature": 0.0,
        "stream": True,
        "stop": ["\n\n"],
        "model": "fake-model",  # learnt from /v1/models: vLLM and Ollama need it
    }
    headers = next(h for _, p, _, h in server.requests if p == "/v1/completions")
    assert headers["Authorization"] == "Bearer sekrit"
    assert backend.last_stats.completion_tokens == 4


def test_indent_is_sent_as_a_grammar_and_only_when_asked() -> None:
    from potion.backends.base import indent_grammar

    with FakeOpenAIServer(["x"]) as server:
        backend = OpenAIBackend(server.url)
        list(backend.complete("p", max_tokens=3, indent="    "))
        list(backend.complete("p", max_tokens=3))
    healed, free = server.bodies("/v1/completions")
    assert healed["grammar"] == indent_grammar("    ") == 'root ::= "    " [^ \\t\\r\\n] [^\\x00]*'
    assert "grammar" not in free


def test_chat_reads_deltas_and_sends_messages() -> None:
    with FakeOpenAIServer(["Use ", "GenServer", "."]) as server:
        backend = OpenAIBackend(server.url, model="my-model")
        messages = [{"role": "user", "content": "How do I keep state?"}]
        assert "".join(backend.chat(messages, max_tokens=20)) == "Use GenServer."
    (body,) = server.bodies("/v1/chat/completions")
    assert body["messages"] == messages and body["model"] == "my-model" and body["stream"] is True


def test_stop_sequence_split_across_events_is_cut_client_side() -> None:
    with FakeOpenAIServer(["abc<|fi", "le_sep|>def"]) as server:
        backend = OpenAIBackend(server.url)
        assert "".join(backend.complete("p", stop=["<|file_sep|>"])) == "abc"


def test_cancel_closes_the_stream_while_the_server_is_silent() -> None:
    with FakeOpenAIServer(["first", "second", "third"], mode="gated") as server:
        backend = OpenAIBackend(server.url)
        cancel = CancelToken()
        stream = backend.complete("p", cancel=cancel)
        assert next(stream) == "first"
        # The server now waits on its gate, so the client is blocked reading: only closing the
        # connection from the watcher can end this.
        threading.Timer(0.05, cancel.set).start()
        assert list(stream) == []
        assert backend.last_stats.cancelled
        server.gate.set()
        assert server.client_gone.wait(timeout=10), "the server never saw the client hang up"


def test_connection_refused_is_one_line_with_the_fix() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    backend = OpenAIBackend(url)
    with pytest.raises(BackendUnavailable) as err:
        list(backend.complete("p"))
    message = err.value.user_message()
    assert url in message and "start the server" in message and "\n" not in message


def test_http_error_carries_the_servers_message() -> None:
    with FakeOpenAIServer(mode="error", error_status=500, error_message="CUDA out of memory") as server:
        backend = OpenAIBackend(server.url)
        with pytest.raises(BackendError) as err:
            list(backend.complete("p"))
    message = err.value.user_message()
    assert "500" in message and "CUDA out of memory" in message and server.url in message


def test_auth_error_points_at_the_api_key() -> None:
    with FakeOpenAIServer(mode="error", error_status=401, error_message="bad key") as server:
        with pytest.raises(BackendError, match="bad key") as err:
            list(OpenAIBackend(server.url).chat([{"role": "user", "content": "hi"}]))
    assert "POTION_API_KEY" in err.value.user_message()


def test_server_dropping_the_connection_mid_stream_is_a_backend_error() -> None:
    with FakeOpenAIServer(["one", "two", "three"], mode="drop", drop_after=1) as server:
        backend = OpenAIBackend(server.url)
        got: list[str] = []
        with pytest.raises(BackendError) as err:
            for piece in backend.complete("p"):
                got.append(piece)
    assert got == ["one"]  # what arrived before the drop was delivered
    message = err.value.user_message()
    assert "dropped the connection mid-stream" in message and server.url in message and "log" in message


def test_stream_ending_without_done_or_finish_reason_counts_as_a_drop() -> None:
    with FakeOpenAIServer(["one", "two"], mode="no_done") as server:
        with pytest.raises(BackendError, match="dropped the connection"):
            list(OpenAIBackend(server.url).complete("p"))


def test_error_event_and_malformed_event_are_reported() -> None:
    with FakeOpenAIServer(["a", "b"], mode="error_event", error_message="slot unavailable") as server:
        with pytest.raises(BackendError, match="slot unavailable"):
            list(OpenAIBackend(server.url).complete("p"))
    with FakeOpenAIServer(["a", "b"], mode="garbage") as server:
        with pytest.raises(BackendError, match="malformed event"):
            list(OpenAIBackend(server.url).complete("p"))


def test_tokenize_uses_the_server_when_it_can() -> None:
    with FakeOpenAIServer(tokenize=True, special_tokens=QWEN_SPECIALS) as server:
        backend = OpenAIBackend(server.url)
        assert backend.tokenize("ab<|fim_prefix|>") == [97, 98, 100000]
    assert server.bodies("/tokenize")[-1]["content"] == "ab<|fim_prefix|>"


def test_tokenize_estimates_without_a_tokenizer_endpoint() -> None:
    with FakeOpenAIServer() as server:
        backend = OpenAIBackend(server.url)
        assert len(backend.tokenize("x" * 30)) == 10  # one token per 3 bytes, documented
        assert len(backend.tokenize("é" * 3)) == 2  # bytes, not characters
        assert backend.tokenize("") == []


def test_info_detects_the_family_by_tokenizing_its_markers_and_reads_props() -> None:
    props = {"default_generation_settings": {"n_ctx": 8192}, "chat_template": "{{ messages }}"}
    with FakeOpenAIServer(tokenize=True, special_tokens=QWEN_SPECIALS, props=props) as server:
        info = OpenAIBackend(server.url).info
    assert info.family == "qwen2.5-coder"
    assert info.n_ctx == 8192 and info.chat_template == "{{ messages }}"
    assert info.fim_tokens["prefix"] == "<|fim_prefix|>" and info.name == "fake-model"


def test_info_falls_back_to_the_model_name_then_unknown() -> None:
    with FakeOpenAIServer(model_id="qwen2.5-coder:1.5b-base") as server:  # Ollama-style, no /tokenize
        assert OpenAIBackend(server.url).info.family == "qwen2.5-coder"
    with FakeOpenAIServer(model_id="llama3:8b") as server:
        info = OpenAIBackend(server.url, n_ctx=2048).info
        assert info.family == "unknown" and info.n_ctx == 2048


def test_a_server_without_models_endpoint_still_completes() -> None:
    with FakeOpenAIServer(["ok"], models=False) as server:
        backend = OpenAIBackend(server.url)
        assert list(backend.complete("p")) == ["ok"]
    assert "model" not in server.bodies("/v1/completions")[0]


def test_not_a_url_is_rejected_up_front() -> None:
    with pytest.raises(BackendError, match="not an http"):
        OpenAIBackend("localhost:8080")


@pytest.mark.e2e
def test_real_llama_cpp_server(tmp_path) -> None:
    import subprocess
    import sys
    import time

    import httpx

    from potion import registry

    model = registry.resolve()
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--port", str(port)]
        + ["--n_ctx", "2048", "--verbose", "False"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            try:
                if httpx.get(url + "/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "llama_cpp.server did not become ready in 120 s"
            time.sleep(0.2)  # polling interval while the server starts, not a wait for a result

        backend = OpenAIBackend(url)
        assert backend.info.family == "qwen2.5-coder"  # via /extras/tokenize of llama_cpp.server
        assert backend.tokenize("<|fim_prefix|>") == [151659]
        prompt = "<|fim_prefix|>def add(a, b):\n    return <|fim_suffix|>\n<|fim_middle|>"
        text = "".join(backend.complete(prompt, max_tokens=8, stop=["<|endoftext|>", "<|file_sep|>"]))
        assert "a" in text and "b" in text
        # llama_cpp.server reads the GBNF grammar of `indent` (token healing of the left-out indentation)
        case = "<|fim_prefix|>case x do\n  1 -> :one\n<|fim_suffix|>\nend\n<|fim_middle|>"
        healed = "".join(backend.complete(case, max_tokens=8, stop=["<|endoftext|>"], indent="  "))
        assert healed.startswith("  ") and not healed[2].isspace(), repr(healed)
        reply = "".join(
            backend.chat([{"role": "user", "content": "Name one Elixir behaviour."}], max_tokens=12)
        )
        assert reply.strip()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
