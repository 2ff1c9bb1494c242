"""llama.cpp in a supervised worker process: a crash of the model is contained, reported and restarted.

llama.cpp reports some inputs (a plausible but wrong GGUF header, an unsupported tensor layout) with
`GGML_ASSERT`, which aborts the process; a segfault or the OOM killer does the same. `SupervisedLlamaCpp`
runs the model in a child (`potion.backends.llama_worker`, which keeps its own `LlamaCppBackend`, so the KV
prefix reuse stays where the cache is) and streams pieces back over a pipe. Guarantees, as OTP's "let it
crash" puts them:

- The process that uses the backend (language server, chat, CLI) never dies with the worker.
- A request in flight when the worker dies fails with `WorkerCrashed`, one line naming the signal and the
  last line llama.cpp wrote; requests not yet sent are served by the next worker.
- A worker that dies after loading is restarted at once in the background, waiting 0.25 s, 0.5 s, 1 s ...
  up to 30 s between crashes that come less than a minute apart (a crash loop does not burn the CPU).
- A worker that crashes while loading the model is not restarted: the file is remembered by its sha256
  (`potion.backends.crash_marks`), and every later load, in this process or the next, fails at once with
  `ModelCrashed` naming the file and the fix.
- Cancellation crosses the pipe: setting the CancelToken returns from the stream at once and tells the
  worker, which stops between prompt chunks or tokens. Pieces arrive in order, as generated.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import potion
from potion import errors
from potion.backends import crash_marks
from potion.backends.base import CancelToken, GenerationStats, ModelInfo
from potion.backends.llamacpp import cpu_cores, header_info
from potion.backends.wire import read_frame, write_frame
from potion.errors import BackendError, ModelCrashed, PotionError, WorkerCrashed
from potion.gguf_header import check_gguf

log = logging.getLogger(__name__)

# Signals that mean the model crashed, as opposed to someone stopping the worker (SIGKILL, SIGTERM).
CRASH_SIGNALS = {signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE}
STDERR_TAIL = 40  # lines of the worker's stderr kept to explain its death
_CANCEL_POLL_S = 0.02  # how often a stream waiting for the next piece looks at its CancelToken


@dataclasses.dataclass(frozen=True)
class Backoff:
    """Delay before restarting a worker that crashed: `first`, doubling up to `most`; a worker that ran
    for `stable` seconds before crashing starts the count again."""

    first: float = 0.25
    most: float = 30.0
    stable: float = 60.0
    wait_at_most: float = 2.0  # a request during a longer back-off fails at once instead of waiting

    def delay(self, crashes: int) -> float:
        return min(self.first * 2 ** max(crashes - 1, 0), self.most)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"crashed ({name})" if -returncode in CRASH_SIGNALS else f"was killed ({name})"
    return f"exited with status {returncode}"


def _last_words(lines: Sequence[str]) -> str:
    """The line of the worker's stderr that says why it died: an assert if there is one, else the last."""
    text = [line.strip() for line in lines if line.strip()]
    for line in reversed(text):
        if "GGML_ASSERT" in line or "error" in line.lower():
            return line[:240]
    return text[-1][:240] if text else ""


class _Worker:
    """One incarnation of the worker process: its pipes, the requests waiting for replies, its death."""

    def __init__(self, config: dict[str, Any], on_exit: Callable[[_Worker], None]) -> None:
        env = dict(os.environ)
        env["GGML_NO_BACKTRACE"] = "1"  # ggml would attach gdb to print a backtrace before aborting
        root = str(Path(potion.__file__).resolve().parent.parent)  # this very package, not another install
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "potion.backends.llama_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=os.name == "posix",  # Ctrl-C in a terminal is the parent's to handle
        )
        self.started = time.monotonic()
        self.loaded = False
        self.stopping = False  # set by close(): the exit that follows is no crash
        self.returncode: int | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
        self._on_exit = on_exit
        self._ids = itertools.count(1)
        self._pending: dict[int, queue.SimpleQueue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._stderr_done = threading.Event()
        self._send(config)  # if it died at once (a broken install), its stderr says why; see _read_replies
        threading.Thread(target=self._read_stderr, name="potion-worker-stderr", daemon=True).start()
        threading.Thread(target=self._read_replies, name="potion-worker-replies", daemon=True).start()

    @property
    def dead(self) -> bool:
        return self.returncode is not None

    def request(self, op: str, **args: Any) -> tuple[int, queue.SimpleQueue[dict[str, Any]]]:
        """Send a request; its replies arrive on the returned queue, ending with done, error or died."""
        replies: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        with self._lock:
            rid = next(self._ids)
            if self.dead:
                replies.put({"id": rid, "kind": "died"})
                return rid, replies
            self._pending[rid] = replies
        self._send({"id": rid, "op": op, "args": args})
        return rid, replies

    def forget(self, rid: int) -> None:
        with self._lock:
            self._pending.pop(rid, None)

    def cancel(self, rid: int) -> None:
        self._send({"id": 0, "op": "cancel", "args": {"target": rid}})

    def _send(self, message: dict[str, Any]) -> None:
        try:
            with self._send_lock:
                write_frame(self.proc.stdin, message)
        except (BrokenPipeError, OSError, ValueError):  # it died: the reply reader tells the waiters
            pass

    def stop(self, timeout: float = 5.0) -> None:
        """End the worker: close its input (it finishes the current token and exits), then kill it."""
        self.stopping = True
        try:
            with self._send_lock:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _read_stderr(self) -> None:
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self.stderr_tail.append(line)
            log.debug("worker %d: %s", self.proc.pid, line)
        self._stderr_done.set()

    def _read_replies(self) -> None:
        try:
            while (message := read_frame(self.proc.stdout)) is not None:
                with self._lock:
                    replies = self._pending.get(message["id"])
                if replies is not None:
                    replies.put(message)
        except (OSError, ValueError, EOFError) as exc:  # a frame cut short by the death
            log.debug("worker %d: reply stream ended: %s", self.proc.pid, exc)
        returncode = self.proc.wait()
        self._stderr_done.wait(2.0)  # the assert line, written just before the abort
        with self._lock:
            self.returncode = returncode
            waiting, self._pending = list(self._pending.values()), {}
        for replies in waiting:
            replies.put({"kind": "died"})
        self._on_exit(self)


class SupervisedLlamaCpp:
    """A GGUF model run by llama.cpp in a supervised worker process (see the module docstring).

    The same interface as `LlamaCppBackend`, lazy too: nothing starts until `load()` or the first call.
    `close()` ends the worker; a later call starts a new one.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        lora_path: str | os.PathLike[str] | None = None,
        backoff: Backoff | None = None,
        worker_backend: str = "potion.backends.llamacpp:LlamaCppBackend",
    ) -> None:
        self.model_path = Path(model_path)
        self.lora_path = Path(lora_path) if lora_path is not None else None
        self.n_ctx = n_ctx
        self.n_threads = n_threads or cpu_cores()
        self.backoff = backoff or Backoff()
        # What the worker runs, as `module:callable` taking LlamaCppBackend's arguments: tests name a
        # scripted stand-in here to exercise crashes and restarts without a model.
        self.worker_backend = worker_backend
        self.last_stats = GenerationStats()
        self.starts = 0  # workers started, restarts included
        self.crashes = 0  # crashes since the last stable stretch (drives the back-off)
        self._worker: _Worker | None = None
        self._failed: ModelCrashed | None = None
        self._restart_at = 0.0
        self._closed = threading.Event()  # replaced by close(): a restart scheduled before it does not run
        self._lock = threading.RLock()  # starting and stopping workers
        self._info: ModelInfo | None = None

    # -- the worker's life -------------------------------------------------------------------------

    @property
    def worker_pid(self) -> int | None:
        """The running worker's process id (tests, diagnostics), or None."""
        worker = self._worker
        return worker.proc.pid if worker is not None and not worker.dead else None

    def load(self) -> None:
        self._ready()

    def _ready(self) -> _Worker:
        """The running, loaded worker: started (after the back-off delay) if there is none."""
        with self._lock:
            worker = self._worker
            if worker is not None and not worker.dead and worker.loaded:
                return worker
            if self._failed is not None:
                raise self._failed
            if worker is not None and not worker.dead:
                worker.stop()  # started but never loaded (a failed load): start over
            self._worker = None
            check_gguf(self.model_path)  # a truncated file: one clear line, no worker needed
            if self.lora_path is not None:
                check_gguf(self.lora_path)
            if (mark := crash_marks.find(self.model_path, self.lora_path)) is not None:
                self._failed = self._crashed_before(mark)
                raise self._failed
            if (wait := self._restart_at - time.monotonic()) > self.backoff.wait_at_most:
                raise WorkerCrashed(
                    f"the model worker is restarting after {self.crashes} crash(es) in a row; the next try "
                    f"is in {wait:.0f}s",
                    hint="wait, or check the model with `potion models verify`",
                )
            if wait > 0:
                time.sleep(wait)  # the back-off between crashes: short, or we would have refused above
            worker = _Worker(
                {
                    "backend": self.worker_backend,
                    "kwargs": {
                        "model_path": str(self.model_path),
                        "lora_path": str(self.lora_path) if self.lora_path is not None else None,
                        "n_ctx": self.n_ctx,
                        "n_threads": self.n_threads,
                    },
                },
                self._exited,
            )
            self._worker = worker
            self.starts += 1
            _, replies = worker.request("load")
            reply = replies.get()
            if reply["kind"] == "done":
                worker.loaded = True
                return worker
            if reply["kind"] == "error":
                worker.stop()
                raise _rebuilt(reply)
            raise self._load_crash(worker)

    def _load_crash(self, worker: _Worker) -> PotionError:
        returncode = worker.returncode if worker.returncode is not None else 0
        how = describe_exit(returncode)
        last = _last_words(worker.stderr_tail)
        what = (
            f"{self.model_path} with the adapter {self.lora_path}" if self.lora_path else str(self.model_path)
        )
        if -returncode not in CRASH_SIGNALS:  # killed from outside (OOM killer?) or a broken install
            return WorkerCrashed(
                f"the model worker {how} while loading {what}" + (f": {last}" if last else ""),
                hint="check free memory, then try again"
                if returncode < 0
                else "the worker could not start: run `potion doctor`",
            )
        mark = crash_marks.record(self.model_path, self.lora_path, f"{how}: {last}" if last else how)
        self._failed = ModelCrashed(
            f"llama.cpp {how} loading {what}" + (f": {last}" if last else ""),
            hint=f"the file is damaged or unsupported: replace it (re-download or re-export); it is not "
            f"loaded again until then (marked in {crash_marks.marks_path()})",
        )
        log.error("%s (marked %s)", self._failed.message, mark.key[:12])
        return self._failed

    def _crashed_before(self, mark: crash_marks.CrashMark) -> ModelCrashed:
        return ModelCrashed(
            f"{self.model_path} crashed llama.cpp {mark.llama_cpp} when it was last loaded ({mark.reason}); "
            "not loading it again",
            hint=f"replace the file (re-download or re-export it); to retry this one, delete "
            f"{crash_marks.marks_path()}",
        )

    def _exited(self, worker: _Worker) -> None:
        """Called on the worker's reply thread when it exits; schedules the restart of a crashed one."""
        if worker.stopping or not worker.loaded:
            return  # a deliberate stop, or a failed load (reported to the caller who asked for it)
        ran = time.monotonic() - worker.started
        with self._lock:
            if self._worker is not worker:
                return
            self.crashes = 1 if ran >= self.backoff.stable else self.crashes + 1
            delay = self.backoff.delay(self.crashes)
            self._restart_at = time.monotonic() + delay
            closed = self._closed
        log.warning(
            "the model worker %s: %s; restarting it in %.2fs",
            describe_exit(worker.returncode or 0),
            _last_words(worker.stderr_tail) or "no message",
            delay,
        )
        threading.Thread(
            target=self._restart, args=(closed,), name="potion-worker-restart", daemon=True
        ).start()

    def _restart(self, closed: threading.Event) -> None:
        if closed.wait(max(self._restart_at - time.monotonic(), 0)):
            return  # closed during the back-off
        with self._lock:
            if closed.is_set():
                return
            try:
                self._ready()
            except PotionError as exc:  # the next request meets the same error and reports it
                log.error("restarting the model worker failed: %s", exc.user_message())

    def _crash_error(self, worker: _Worker, doing: str) -> WorkerCrashed:
        last = _last_words(worker.stderr_tail)
        return WorkerCrashed(
            f"the model worker {describe_exit(worker.returncode or 0)} while {doing}"
            + (f": {last}" if last else ""),
            hint="Potion restarts it; if this keeps happening, check the model with `potion models verify`",
        )

    def close(self) -> None:
        """End the worker (a generation in flight on another thread ends as cancelled)."""
        with self._lock:
            self._closed.set()
            self._closed = threading.Event()
            worker, self._worker = self._worker, None
        if worker is not None and not worker.dead:
            worker.stop()

    # -- requests ----------------------------------------------------------------------------------

    def _call(self, op: str, doing: str, **args: Any) -> Any:
        worker = self._ready()
        rid, replies = worker.request(op, **args)
        try:
            reply = replies.get()
        finally:
            worker.forget(rid)
        if reply["kind"] == "done":
            return reply["value"]
        if reply["kind"] == "error":
            raise _rebuilt(reply)
        raise self._crash_error(worker, doing)

    @property
    def info(self) -> ModelInfo:
        """From the GGUF header, in this process: no worker is needed to build prompts."""
        if self._info is None:
            self._info = header_info(self.model_path, self.n_ctx)
        return self._info

    def tokenize(self, text: str) -> list[int]:
        return self._call("tokenize", "tokenizing", text=text)

    def chat_prompt(self, messages: Sequence[dict[str, str]]) -> tuple[str, list[str]]:
        prompt, stop = self._call("chat_prompt", "formatting a chat", messages=list(messages))
        return prompt, list(stop)

    def reset_cache(self) -> None:
        """Forget the cached prompt, so the next call evaluates all of its prompt (benchmarks, tests)."""
        self._call("reset_cache", "resetting its cache")

    def token_logprobs(self, text: str, *, chunk: int = 64) -> list[float]:
        return self._call("token_logprobs", "scoring text", text=text, chunk=chunk)

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int = 128,
        stop: Sequence[str] = (),
        cancel: CancelToken | None = None,
        temperature: float = 0.0,
        indent: str = "",
    ) -> Iterator[str]:
        args = {"input": prompt, "max_tokens": max_tokens, "stop": list(stop), "temperature": temperature}
        if indent:
            args["indent"] = indent
        return self._stream("complete", args, cancel)

    def chat(
        self,
        messages: Sequence[dict[str, str]],
        *,
        max_tokens: int = 512,
        stop: Sequence[str] = (),
        cancel: CancelToken | None = None,
        temperature: float = 0.2,
    ) -> Iterator[str]:
        args = {
            "input": list(messages),
            "max_tokens": max_tokens,
            "stop": list(stop),
            "temperature": temperature,
        }
        return self._stream("chat", args, cancel)

    def _stream(self, op: str, args: dict[str, Any], cancel: CancelToken | None) -> Iterator[str]:
        stats = GenerationStats()
        self.last_stats = stats
        if cancel is not None and cancel.is_set():
            stats.cancelled = True
            return
        worker = self._ready()
        rid, replies = worker.request(op, **args)
        finished = False
        try:
            while True:
                if (cancel is not None and cancel.is_set()) or worker.stopping:  # stopping: close()d
                    stats.cancelled = True
                    return
                try:
                    reply = replies.get(timeout=_CANCEL_POLL_S) if cancel is not None else replies.get()
                except queue.Empty:
                    continue
                kind = reply["kind"]
                if kind == "piece":
                    _update(stats, reply["stats"])
                    yield reply["text"]
                elif kind == "done":
                    finished = True
                    _update(stats, reply["stats"])
                    return
                elif kind == "error":
                    finished = True
                    raise _rebuilt(reply)
                else:
                    finished = True
                    if worker.stopping:  # closed by its owner: the stream ends as cancelled
                        stats.cancelled = True
                        return
                    raise self._crash_error(worker, "generating")
        finally:
            if not finished:
                worker.cancel(rid)  # the consumer stopped early or cancelled: stop the worker too
            worker.forget(rid)


def _update(stats: GenerationStats, values: Sequence[Any]) -> None:
    for f, value in zip(dataclasses.fields(stats), values, strict=True):
        setattr(stats, f.name, value)


def _rebuilt(reply: dict[str, Any]) -> Exception:
    """The worker's error as the domain error it was (ContextOverflow, ModelCorrupt, ...)."""
    cls = getattr(errors, reply["type"], None)
    if isinstance(cls, type) and issubclass(cls, PotionError):
        return cls(reply["message"], hint=reply["hint"])
    return BackendError(f"the model worker failed: {reply['type']}: {reply['message']}")
