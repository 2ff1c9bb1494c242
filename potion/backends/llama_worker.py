"""The model worker: a child process that owns a `LlamaCppBackend` and serves it over its stdin/stdout.

`python -m potion.backends.llama_worker` is started by `SupervisedLlamaCpp` (potion/backends/supervised.py).
llama.cpp reports some broken inputs with `GGML_ASSERT`, which aborts the whole process; running it here
means an abort kills this worker, never the language server or the chat that uses it.

Messages are dicts framed by `potion.backends.wire`. The first frame from the parent names the backend
and its arguments; then requests `{"id", "op", "args"}`. Replies carry the request's id: `piece`
(streamed text and the generation's counters so far), `done` (the result), `error` (a PotionError's
class name, message and hint).
A `cancel` request sets the CancelToken of the generation it names, which stops between tokens.
End of input (the parent closed the pipe or died) ends the worker.

stdout is the reply channel, so the worker moves it to a private descriptor first and points fd 1 at
stderr: whatever llama.cpp prints cannot corrupt a frame. stderr goes to the parent, which keeps its tail
to say why a worker died (the `GGML_ASSERT(...)` line).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import sys
import threading
from typing import IO, Any

from potion.backends.base import CancelToken
from potion.backends.wire import read_frame, write_frame
from potion.errors import PotionError

log = logging.getLogger("potion.worker")


def error_reply(rid: int, exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, PotionError):
        return {
            "id": rid,
            "kind": "error",
            "type": type(exc).__name__,
            "message": exc.message,
            "hint": exc.hint,
        }
    return {"id": rid, "kind": "error", "type": type(exc).__name__, "message": str(exc), "hint": None}


class WorkerLoop:
    """Requests run one at a time on the main thread; a reader thread takes cancels (and tokenize
    requests, which need no lock) while a generation runs."""

    def __init__(self, backend: Any, out: IO[bytes]) -> None:
        self.backend = backend
        self.out = out
        self.requests: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.cancels: dict[int, CancelToken] = {}
        self._write_lock = threading.Lock()
        self._loaded = False

    def send(self, message: dict[str, Any]) -> None:
        with self._write_lock:
            write_frame(self.out, message)

    def read_requests(self, inp: IO[bytes]) -> None:
        while (request := read_frame(inp)) is not None:
            op, rid = request["op"], request["id"]
            if op == "cancel":
                if (token := self.cancels.get(request["args"]["target"])) is not None:
                    token.set()
            elif op == "tokenize" and self._loaded:
                self._answer(rid, lambda: self.backend.tokenize(request["args"]["text"]))
            else:
                self.cancels[rid] = CancelToken()
                self.requests.put(request)
        for token in list(self.cancels.values()):  # the parent closed us or is gone: stop generating
            token.set()
        self.requests.put(None)

    def run(self) -> None:
        while (request := self.requests.get()) is not None:
            rid, op, args = request["id"], request["op"], request["args"]
            cancel = self.cancels.get(rid)
            try:
                if op in ("complete", "chat"):
                    self._stream(rid, op, args, cancel)
                else:
                    self._answer(rid, lambda op=op, args=args: self._call(op, args))
            finally:
                self.cancels.pop(rid, None)

    def _call(self, op: str, args: dict[str, Any]) -> Any:
        backend = self.backend
        if op == "load":
            backend.load()
            self._loaded = True
            return None
        if op == "tokenize":
            return backend.tokenize(args["text"])
        if op == "chat_prompt":
            return backend.chat_prompt(args["messages"])
        if op == "reset_cache":
            return backend.reset_cache()
        if op == "token_logprobs":
            return backend.token_logprobs(args["text"], chunk=args["chunk"])
        raise PotionError(f"the model worker got an unknown request {op!r}")

    def _answer(self, rid: int, fn: Any) -> None:
        try:
            value = fn()
        except Exception as exc:  # every failure goes back to the caller; the worker keeps serving
            self.send(error_reply(rid, exc))
        else:
            self.send({"id": rid, "kind": "done", "value": value})

    def _stream(self, rid: int, op: str, args: dict[str, Any], cancel: CancelToken | None) -> None:
        backend = self.backend
        stats = lambda: dataclasses.astuple(backend.last_stats)  # noqa: E731 - read after each piece
        method = backend.complete if op == "complete" else backend.chat
        generation = method(args.pop("input"), cancel=cancel, **args)
        try:
            for piece in generation:
                self.send({"id": rid, "kind": "piece", "text": piece, "stats": stats()})
        except Exception as exc:  # ContextOverflow, a template error...: the caller's to report
            self.send(error_reply(rid, exc))
            return
        finally:
            generation.close()
        self.send({"id": rid, "kind": "done", "value": None, "stats": stats()})


def make_backend(spec: str, kwargs: dict[str, Any]) -> Any:
    """`module:callable` called with the backend's arguments: `LlamaCppBackend`, or a scripted stand-in
    that tests name to exercise the supervision without a model."""
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)(**kwargs)


def main() -> int:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed to stdout (llama.cpp, a stray print) lands on stderr
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    inp = sys.stdin.buffer
    config = read_frame(inp)
    if config is None:
        return 0
    backend = make_backend(config["backend"], config["kwargs"])
    loop = WorkerLoop(backend, out)
    threading.Thread(target=loop.read_requests, args=(inp,), name="potion-worker-read", daemon=True).start()
    loop.run()
    out.flush()
    # No interpreter teardown: freeing llama.cpp's model at exit is slow and has nothing left to protect.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
