"""BackendPool against scripted local servers: routing, failover, the circuit breaker, bad servers."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from fakes_openai import FakeOpenAIServer

from potion.backends import BackendPool, CancelToken, OpenAIBackend, open_backend
from potion.backends.pool import parse_urls
from potion.errors import BackendError, BackendUnavailable, ServerRejected

pytestmark = pytest.mark.timeout(60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Clock:
    """A clock the test moves by hand, so back-offs pass without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def completions(server: FakeOpenAIServer) -> int:
    return len(server.bodies("/v1/completions"))


def wait_until(condition, timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


# -- URLs -----------------------------------------------------------------------------------------


def test_parse_urls_takes_one_a_comma_list_or_a_list() -> None:
    assert parse_urls("http://a:1") == ["http://a:1"]
    assert parse_urls(" http://a:1 , https://b:2/v1 ") == ["http://a:1", "https://b:2/v1"]
    assert parse_urls(["http://a:1", "http://b:2"]) == ["http://a:1", "http://b:2"]
    assert parse_urls(None) == [] and parse_urls("  ") == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("http://a:1,localhost:2", "not an http"),
        ("http://a:1,,http://b:2", "empty server URL"),
        (["http://a:1", "http://a:1/v1"], "listed twice"),
        (["http://a:1", 8080], "must be a string"),
    ],
)
def test_parse_urls_names_the_bad_entry(value, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_urls(value)


def test_open_backend_makes_a_pool_of_several_urls_only() -> None:
    assert isinstance(open_backend(url="http://127.0.0.1:1,http://127.0.0.1:2"), BackendPool)
    assert isinstance(open_backend(url=["http://127.0.0.1:1", "http://127.0.0.1:2"]), BackendPool)
    assert isinstance(open_backend(url="http://127.0.0.1:1"), OpenAIBackend)
    with pytest.raises(BackendError, match="not an http"):
        open_backend(url="http://127.0.0.1:1,127.0.0.1:2")


def test_url_flags_take_a_pool_and_name_a_bad_entry() -> None:
    from potion.commands.complete import CompleteArgs
    from tui.cli import ChatArgs

    base = {"file": "a.ex", "line": 1, "col": 1}
    assert CompleteArgs(**base, url="http://a:1,http://b:2").url == "http://a:1,http://b:2"
    with pytest.raises(ValueError, match="--url: not an http"):
        CompleteArgs(**base, url="http://a:1,b:2")
    assert ChatArgs(url="http://a:1,http://b:2").url == "http://a:1,http://b:2"
    with pytest.raises(ValueError, match="--url: the server http://a:1/ is listed twice"):
        ChatArgs(url="http://a:1,http://a:1/")


# -- routing --------------------------------------------------------------------------------------


def test_a_quiet_pool_takes_turns() -> None:
    with FakeOpenAIServer(["a"]) as one, FakeOpenAIServer(["a"]) as two:
        pool = BackendPool([one.url, two.url])
        for _ in range(4):
            assert "".join(pool.complete("p")) == "a"
    assert completions(one) == 2 and completions(two) == 2


def test_a_request_goes_to_the_server_with_fewest_in_flight() -> None:
    with (
        FakeOpenAIServer(["x", "y"], mode="gated") as busy,
        FakeOpenAIServer(["x", "y"], mode="gated") as idle,
    ):
        pool = BackendPool([busy.url, idle.url])
        first = pool.complete("p")
        assert next(first) == "x"
        (held,) = [s for s in pool.servers() if s.outstanding == 1]
        other = idle if held.url == busy.url else busy
        second = pool.complete("q")
        assert next(second) == "x"
        assert completions(other) == 1  # the second request did not queue behind the first
        assert [s.outstanding for s in pool.servers()] == [1, 1]
        first.close()
        second.close()
        assert [s.outstanding for s in pool.servers()] == [0, 0]


# -- failover -------------------------------------------------------------------------------------


def test_a_failing_server_is_marked_down_and_the_request_retried_elsewhere() -> None:
    clock = Clock()
    with FakeOpenAIServer(mode="error", error_status=500) as bad, FakeOpenAIServer(["ok"]) as good:
        pool = BackendPool([bad.url, good.url], clock=clock)
        answers = ["".join(pool.complete("p")) for _ in range(4)]
        assert answers == ["ok"] * 4
        assert completions(bad) == 1  # down after its failure: no more traffic during the back-off
        (state,) = [s for s in pool.servers() if s.url == bad.url]
        assert not state.up and "500" in state.last_error


def test_a_refused_connection_fails_over_too() -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    with FakeOpenAIServer(["ok"]) as good:
        pool = BackendPool([dead, good.url])
        assert ["".join(pool.chat([{"role": "user", "content": "hi"}])) for _ in range(3)] == ["ok"] * 3


def test_a_stream_dropped_before_any_text_is_retried_once() -> None:
    clock = Clock()
    with (
        FakeOpenAIServer(["one", "two"], mode="drop", drop_after=0) as dropper,
        FakeOpenAIServer(["one", "two"]) as good,
    ):
        pool = BackendPool([dropper.url, good.url], clock=clock)
        assert list(pool.complete("p")) == ["one", "two"]  # whole, once
        assert completions(dropper) == 1 and completions(good) == 1


def test_a_stream_dropped_after_text_was_shown_is_a_clear_error_without_duplicate_text() -> None:
    clock = Clock()
    with (
        FakeOpenAIServer(["one", "two", "three"], mode="drop", drop_after=1) as dropper,
        FakeOpenAIServer(["one", "two", "three"]) as good,
    ):
        pool = BackendPool([dropper.url, good.url], clock=clock)
        pool._turn = 0  # the first request goes to the dropper
        got: list[str] = []
        with pytest.raises(BackendError) as err:
            for piece in pool.complete("p"):
                got.append(piece)
        assert got == ["one"]
        message = err.value.user_message()
        assert "mid-answer" in message and "incomplete" in message and dropper.url in message
        assert completions(good) == 0  # no second answer was started behind the user's back
        assert "".join(pool.complete("p")) == "onetwothree"  # the next request avoids the dropper
        assert completions(dropper) == 1


def test_retry_happens_once_only() -> None:
    servers = [FakeOpenAIServer(mode="error", error_status=503) for _ in range(3)]
    for server in servers:
        server.__enter__()
    try:
        pool = BackendPool([s.url for s in servers])
        with pytest.raises(BackendError, match="503"):
            list(pool.complete("p"))
        assert sum(completions(s) for s in servers) == 2
    finally:
        for server in servers:
            server.__exit__(None, None, None)


def test_a_rejected_request_is_neither_retried_nor_held_against_the_server() -> None:
    with (
        FakeOpenAIServer(mode="error", error_status=400, error_message="context too long") as picky,
        FakeOpenAIServer(mode="error", error_status=400, error_message="context too long") as other,
    ):
        pool = BackendPool([picky.url, other.url])
        with pytest.raises(ServerRejected, match="context too long"):
            list(pool.complete("p"))
        assert completions(picky) + completions(other) == 1
        assert all(s.up for s in pool.servers())


def test_cancelling_is_not_a_server_failure() -> None:
    with FakeOpenAIServer(["a", "b", "c"], mode="gated") as server, FakeOpenAIServer() as other:
        pool = BackendPool([server.url, other.url])
        pool._turn = 0
        cancel = CancelToken()
        stream = pool.complete("p", cancel=cancel)
        assert next(stream) == "a"
        threading.Timer(0.05, cancel.set).start()
        assert list(stream) == []
        assert all(s.up for s in pool.servers()) and pool.servers()[0].outstanding == 0


# -- bad servers ----------------------------------------------------------------------------------


def test_garbage_before_any_text_fails_over_and_after_text_is_reported() -> None:
    clock = Clock()
    with FakeOpenAIServer(["a", "b"], mode="garbage", drop_after=0) as junk, FakeOpenAIServer(["ok"]) as good:
        pool = BackendPool([junk.url, good.url], clock=clock)
        pool._turn = 0
        assert "".join(pool.complete("p")) == "ok"
        assert not pool.servers()[0].up and "malformed" in pool.servers()[0].last_error
    with FakeOpenAIServer(["a", "b"], mode="garbage", drop_after=1) as junk, FakeOpenAIServer(["ok"]) as good:
        pool = BackendPool([junk.url, good.url], clock=clock)
        pool._turn = 0
        with pytest.raises(BackendError, match="mid-answer.*malformed"):
            list(pool.complete("p"))
        assert completions(good) == 0


def test_a_server_stalling_before_the_first_token_times_out_and_fails_over() -> None:
    with FakeOpenAIServer(["a"], mode="stall") as stuck, FakeOpenAIServer(["ok"]) as good:
        pool = BackendPool([stuck.url, good.url], timeout=0.3)
        pool._turn = 0
        started = time.monotonic()
        assert "".join(pool.complete("p")) == "ok"
        assert time.monotonic() - started < 5
        assert not pool.servers()[0].up and "0.3s" in pool.servers()[0].last_error


def test_a_server_stalling_mid_stream_ends_with_a_clear_error() -> None:
    with FakeOpenAIServer(["a", "b"], mode="gated") as stuck, FakeOpenAIServer(["ok"]) as good:
        pool = BackendPool([stuck.url, good.url], timeout=0.3)
        pool._turn = 0
        got: list[str] = []
        with pytest.raises(BackendError, match="mid-answer") as err:
            for piece in pool.complete("p"):
                got.append(piece)
        assert got == ["a"] and "stopped answering" in err.value.user_message()
        assert completions(good) == 0


# -- every server down, and back ------------------------------------------------------------------


def test_every_server_down_is_one_clear_message_at_once_and_the_pool_recovers() -> None:
    clock = Clock()
    ports = [_free_port(), _free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    pool = BackendPool(urls, clock=clock, backoff_s=1.0)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as err:
        list(pool.complete("p"))
    message = err.value.user_message()
    assert all(url in message for url in urls) and "\n" not in message
    with pytest.raises(BackendUnavailable, match="all 2 servers of the pool are down") as err:
        list(pool.complete("p"))  # both in back-off: no connection is even tried
    assert "next check is in 1.0s" in err.value.user_message()
    assert time.monotonic() - started < 5

    with FakeOpenAIServer(["back"], port=ports[1]) as returned:
        with pytest.raises(BackendUnavailable):
            list(pool.complete("p"))  # still within the back-off
        clock.now += 1.0  # the back-off ends: the next request probes, finds the server, and is served
        assert "".join(pool.complete("p")) == "back"
        assert pool.servers()[1].up and not pool.servers()[0].up
        assert completions(returned) == 1


def test_back_off_doubles_with_each_failed_probe_up_to_the_cap() -> None:
    clock = Clock()
    pool = BackendPool([f"http://127.0.0.1:{_free_port()}"], clock=clock, backoff_s=1.0, max_backoff_s=3.0)
    waits = []
    for _ in range(4):
        with pytest.raises(BackendUnavailable):
            list(pool.complete("p"))
        state = pool.servers()[0]
        waits.append(state.down_until - clock.now)
        clock.now = state.down_until
    assert waits == [1.0, 2.0, 3.0, 3.0]


def test_a_recovered_server_is_probed_in_the_background_while_another_serves() -> None:
    clock = Clock()
    port = _free_port()
    with FakeOpenAIServer(["ok"]) as good:
        pool = BackendPool([f"http://127.0.0.1:{port}", good.url], clock=clock)
        pool._turn = 0
        assert "".join(pool.complete("p")) == "ok"
        assert not pool.servers()[0].up
        with FakeOpenAIServer(["back"], port=port) as returned:
            clock.now += 10
            assert "".join(pool.complete("p")) == "ok"  # served at once by the healthy server
            wait_until(lambda: pool.servers()[0].up, what="the background probe")
            assert returned.bodies("/v1/models")  # the probe
            assert {"".join(pool.complete("p")) for _ in range(2)} == {"ok", "back"}


def test_load_needs_one_server_and_marks_the_others_down() -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    with FakeOpenAIServer(model_id="qwen2.5-coder-7b") as good:
        pool = BackendPool([dead, good.url])
        pool.load()
        assert [s.up for s in pool.servers()] == [False, True]
        assert pool.info.name == "qwen2.5-coder-7b"
    with pytest.raises(BackendUnavailable, match="pool"):
        BackendPool([dead, f"http://127.0.0.1:{_free_port()}"]).load()


def test_tokenize_fails_over_too() -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    with FakeOpenAIServer(tokenize=True) as good:
        pool = BackendPool([dead, good.url])
        pool._turn = 0
        assert pool.tokenize("ab") == [97, 98]


# -- two real llama_cpp.server processes ----------------------------------------------------------


def _start_llama_server(model, log_path):
    import subprocess
    import sys

    import httpx

    port = _free_port()
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--port", str(port)]
        + ["--n_ctx", "1024", "--n_threads", "1", "--verbose", "False"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        assert proc.poll() is None, log_path.read_text()[-2000:]
        try:
            if httpx.get(url + "/v1/models", timeout=1).status_code == 200:
                return proc, url, log
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "llama_cpp.server did not become ready in 180 s"
        time.sleep(0.2)  # polling interval while the server loads the model, not a wait for a result


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_two_real_llama_cpp_servers_one_killed_mid_stream(tmp_path) -> None:
    from potion import registry

    model = registry.resolve(registry.DEFAULT_MODEL)
    started = [_start_llama_server(model, tmp_path / f"server{i}.log") for i in range(2)]
    (victim, victim_url, _), (_, survivor_url, _) = started
    prompt = "<|fim_prefix|>defmodule Stack do\n  <|fim_suffix|>\nend\n<|fim_middle|>"
    stop = ["<|endoftext|>", "<|file_sep|>"]
    try:
        pool = BackendPool([victim_url, survivor_url], timeout=120)
        assert pool.info.family == "qwen2.5-coder"
        # Both serve: with nothing in flight the pool takes turns.
        answers = ["".join(pool.complete(prompt, max_tokens=8, stop=stop)) for _ in range(2)]
        assert all(a.strip() for a in answers) and [s.served for s in pool.servers()] == [1, 1]
        reference = "".join(pool.complete(prompt, max_tokens=48, stop=stop))

        pool._turn = 0  # the next request goes to the victim
        got: list[str] = []
        with pytest.raises(BackendError) as err:
            for piece in pool.complete(prompt, max_tokens=48, stop=stop):
                got.append(piece)
                if len(got) == 1:
                    victim.kill()  # the server dies mid-answer
        message = err.value.user_message()
        assert "mid-answer" in message and "incomplete" in message and victim_url in message
        assert got and reference.startswith("".join(got))  # what was shown is never repeated
        assert not pool.servers()[0].up

        # Later requests go to the survivor; a fresh pool retries a refused connection there at once.
        assert "".join(pool.complete(prompt, max_tokens=8, stop=stop)).strip()
        fresh = BackendPool([victim_url, survivor_url], timeout=120)
        fresh._turn = 0
        assert "".join(fresh.complete(prompt, max_tokens=8, stop=stop)).strip()
        assert not fresh.servers()[0].up and fresh.servers()[1].served == 1
    finally:
        for proc, _, log in started:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except Exception:  # noqa: BLE001 - a server that ignores SIGTERM is killed
                proc.kill()
                proc.wait()
            log.close()
