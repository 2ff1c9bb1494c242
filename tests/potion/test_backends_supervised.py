"""SupervisedLlamaCpp without a model: a scripted backend runs in the real worker process (worker_fakes.py),
so streaming, cancellation, crashes, restarts and crash marks are tested across the real pipe, fast."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from potion.backends import Backend, CancelToken, SupervisedLlamaCpp, open_backend
from potion.backends.crash_marks import marks_path
from potion.backends.fake import fake_pieces
from potion.backends.supervised import Backoff
from potion.errors import ModelCrashed, WorkerCrashed

pytestmark = pytest.mark.timeout(180)  # a worker process starts in seconds on a busy machine

HERE = Path(__file__).resolve().parent
SCRIPTED = "worker_fakes:scripted"
ANSWER = "def add(a, b), do: a + b\n"


@pytest.fixture
def script(potion_home: Path, monkeypatch: pytest.MonkeyPatch):
    """Set what the scripted worker does; the worker finds worker_fakes.py through PYTHONPATH."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))

    def set_script(**script) -> None:
        monkeypatch.setenv("POTION_TEST_WORKER", json.dumps(script))

    set_script(responses=[ANSWER])
    return set_script


@pytest.fixture
def model(make_gguf) -> Path:
    return make_gguf("tiny.gguf", metadata={"general.architecture": "qwen2"}, tensors=[("t", [32], 0)])


@pytest.fixture
def supervised(model: Path):
    opened: list[SupervisedLlamaCpp] = []

    def make(**kwargs) -> SupervisedLlamaCpp:
        kwargs.setdefault("backoff", Backoff(first=0.01))
        backend = SupervisedLlamaCpp(model, worker_backend=SCRIPTED, **kwargs)
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        backend.close()


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.01)


def test_open_backend_runs_llama_cpp_supervised_and_lazy(model: Path) -> None:
    backend = open_backend(str(model), n_ctx=512)
    assert isinstance(backend, SupervisedLlamaCpp) and isinstance(backend, Backend)
    assert backend.model_path == model and backend.n_ctx == 512
    assert backend.info.n_ctx == 512 and backend.worker_pid is None  # the header is read here; no worker


def test_pieces_stream_in_order_with_their_counters(script, supervised) -> None:
    script(responses=[ANSWER], token_delay=0.001)
    backend = supervised()
    pieces = list(backend.complete("<|fim_prefix|>x", max_tokens=100))
    assert pieces == fake_pieces(ANSWER)
    assert backend.last_stats.completion_tokens == len(pieces) and not backend.last_stats.cancelled
    assert backend.tokenize("a b") == backend.tokenize("a b") and len(backend.tokenize("a b")) == 3
    assert "".join(backend.chat([{"role": "user", "content": "hi"}], stop=[","])) == "def add(a"


def test_cancel_crosses_the_pipe_and_stops_the_worker(script, supervised) -> None:
    script(responses=["word " * 2000], token_delay=0.05)  # 200 s if the worker went on generating
    backend = supervised()
    backend.load()
    cancel = CancelToken()
    got = []
    for piece in backend.complete("x", max_tokens=4000, cancel=cancel):
        got.append(piece)
        cancel.set()
    assert len(got) == 1 and backend.last_stats.cancelled
    # The worker stopped too: the next request is answered long before the old one would have ended.
    started = time.monotonic()
    assert "".join(backend.complete("y", max_tokens=3)) == "word word"
    assert time.monotonic() - started < 30

    cancel = CancelToken()
    cancel.set()
    assert list(backend.complete("x", cancel=cancel)) == [] and backend.last_stats.cancelled


def test_a_cancel_from_another_thread_ends_a_waiting_stream_at_once(script, supervised) -> None:
    script(responses=["slow " * 20], token_delay=60.0)
    backend = supervised()
    backend.load()
    cancel = CancelToken()
    timer = threading.Timer(0.2, cancel.set)
    timer.start()
    started = time.monotonic()
    assert list(backend.complete("x", cancel=cancel)) == []  # no piece came before the cancel
    assert time.monotonic() - started < 20 and backend.last_stats.cancelled


def test_a_worker_killed_mid_stream_fails_the_request_and_the_next_is_answered(script, supervised) -> None:
    script(responses=["word " * 200], token_delay=0.05)
    backend = supervised()
    stream = backend.complete("x", max_tokens=400)
    assert next(stream) == "word"
    first_pid = backend.worker_pid
    os.kill(first_pid, signal.SIGKILL)
    with pytest.raises(WorkerCrashed, match=r"killed \(SIGKILL\) while generating") as err:
        list(stream)
    assert "Potion restarts it" in err.value.user_message()
    # Restarted in the background, with back-off; the next request is served by the new worker.
    assert "".join(backend.complete("x", max_tokens=2)) == "word "
    assert backend.starts == 2 and backend.worker_pid not in (None, first_pid)


def test_an_abort_mid_generation_names_the_assert_and_the_parent_lives_on(script, supervised) -> None:
    script(responses=[ANSWER], abort_on="BOOM")
    backend = supervised()
    with pytest.raises(WorkerCrashed) as err:
        list(backend.complete("x = BOOM"))
    message = err.value.user_message()
    assert "crashed (SIGABRT) while generating" in message and "GGML_ASSERT(fake crash mid-stream)" in message
    assert "".join(backend.complete("fine")) == ANSWER
    assert not marks_path().exists()  # it loaded fine: the file is not to blame


def test_a_crash_on_load_is_remembered_by_the_files_hash(script, supervised, model: Path) -> None:
    script(abort_on_load=True)
    backend = supervised()
    with pytest.raises(ModelCrashed) as err:
        backend.load()
    message = err.value.user_message()
    assert str(model) in message and "crashed (SIGABRT)" in message and "GGML_ASSERT(" in message
    assert "replace it" in message
    with pytest.raises(ModelCrashed):  # not retried in this process either
        list(backend.complete("x"))
    assert backend.starts == 1

    # A new process (a new backend) does not load it again: the mark on disk says why.
    script(responses=["fine"])  # it would load now, but the mark stops it first
    again = supervised()
    with pytest.raises(ModelCrashed, match="not loading it again") as err:
        again.load()
    assert str(marks_path()) in err.value.user_message() and again.starts == 0
    [mark] = json.loads(marks_path().read_text())
    assert mark["path"] == str(model) and "SIGABRT" in mark["reason"]

    # The same name with other contents (re-downloaded) is another file: it loads.
    with model.open("ab") as f:
        f.write(b"\0" * 32)
    assert "".join(supervised().complete("x")) == "fine"


def test_a_mark_from_another_llama_cpp_version_does_not_apply(
    script, supervised, monkeypatch: pytest.MonkeyPatch
) -> None:
    script(abort_on_load=True)
    with pytest.raises(ModelCrashed):
        supervised().load()
    monkeypatch.setattr("potion.backends.crash_marks.llama_cpp_version", lambda: "99.0.0")
    script(responses=["fine"])
    assert "".join(supervised().complete("x")) == "fine"


def test_a_worker_killed_while_loading_is_not_blamed_on_the_file(script, supervised) -> None:
    script(responses=["x"], load_delay=30)
    backend = supervised()
    failures: list[Exception] = []

    def load() -> None:
        try:
            backend.load()
        except WorkerCrashed as exc:
            failures.append(exc)

    loading = threading.Thread(target=load)
    loading.start()
    wait_for(lambda: backend.worker_pid is not None)
    os.kill(backend.worker_pid, signal.SIGKILL)
    loading.join(20)
    assert "killed (SIGKILL) while loading" in failures[0].user_message()
    assert not marks_path().exists()
    script(responses=["x"])  # killed from outside: the next try loads it
    assert "".join(backend.complete("x")) == "x"


def test_a_worker_that_cannot_start_says_why(script, model: Path) -> None:
    backend = SupervisedLlamaCpp(model, worker_backend="no_such_module:Backend")
    with pytest.raises(WorkerCrashed) as err:
        backend.load()
    message = err.value.user_message()
    assert "exited with status 1 while loading" in message and "No module named 'no_such_module'" in message
    assert "potion doctor" in message and not marks_path().exists()


def test_crashes_in_a_row_back_off_and_refuse_while_waiting(script, supervised) -> None:
    assert [Backoff().delay(n) for n in (1, 2, 3, 9)] == [0.25, 0.5, 1.0, 30.0]
    script(responses=["x"])
    backend = supervised(backoff=Backoff(first=30, wait_at_most=1))
    backend.load()
    os.kill(backend.worker_pid, signal.SIGKILL)
    wait_for(lambda: backend.crashes == 1)
    with pytest.raises(WorkerCrashed, match="next try is in 30s"):
        backend.tokenize("x")


def test_close_ends_the_worker_and_a_later_call_starts_another(script, supervised) -> None:
    script(responses=["word " * 100], token_delay=0.05)
    backend = supervised()
    backend.load()
    pid = backend.worker_pid
    stream = backend.complete("x", max_tokens=100, cancel=CancelToken())
    next(stream)
    backend.close()
    assert list(stream) == [] and backend.last_stats.cancelled  # closed by its owner: no crash
    wait_for(lambda: not Path(f"/proc/{pid}").exists())
    assert backend.crashes == 0
    assert "".join(backend.complete("x", max_tokens=1)) == "word"


def test_what_the_model_prints_never_corrupts_the_replies(script, supervised) -> None:
    script(responses=[ANSWER], noisy=True)
    assert "".join(supervised().complete("x")) == ANSWER


def test_a_real_llama_cpp_abort_on_load_is_contained_and_remembered(crafted_gguf: Path, potion_home) -> None:
    backend = SupervisedLlamaCpp(crafted_gguf)
    with pytest.raises(ModelCrashed) as err:
        backend.load()  # this process lives on: only the worker died
    message = err.value.user_message()
    assert f"llama.cpp crashed (SIGABRT) loading {crafted_gguf}" in message
    assert "GGML_ASSERT(hparams.n_layer_all > 0" in message and "replace it" in message
    again = open_backend(str(crafted_gguf))  # as the next editor session would
    with pytest.raises(ModelCrashed, match="not loading it again"):
        list(again.complete("x"))
    assert again.starts == 0
