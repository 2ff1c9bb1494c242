"""Serving pool: throughput of two servers against one, and failover while a server dies and returns.

    .venv/bin/python bench/serving_pool.py --quick      # JSON object on the last line

The servers are fake OpenAI-compatible servers of fixed latency, each its own process on 127.0.0.1
(`--serve PORT`, stdlib only) with one slot, as llama-server with `--parallel 1`: requests queue and are
answered one at a time, `--latency-ms` each (most of it before the first token, then a few streamed
pieces). `--clients` threads send completions through `potion.backends.BackendPool` back to back.

1. Throughput: the same requests through a pool of one server and through a pool of two.
   Target: pool_speedup = rps(two) / rps(one) >= 1.8.
2. Failover: a pool of two under the same load for `--failover-s`; one server is killed (SIGKILL, streams
   cut mid-answer) a third of the way in and restarted on its port at two thirds. Target:
   answered_during_failover = answers received whole / requests sent >= 0.99. A request whose stream was
   cut after text was shown counts as not answered (the pool reports it; it never repeats text).

Progress goes to stderr; the last line of stdout is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PIECES = 4
FIRST_TOKEN_SHARE = 0.7


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the fake server (its own process) ----------------------------------------------------------------


def serve(port: int, latency_ms: float) -> None:
    """A one-slot OpenAI-compatible server answering every completion in `latency_ms`."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    slot = threading.Lock()
    first = latency_ms * FIRST_TOKEN_SHARE / 1000
    between = latency_ms * (1 - FIRST_TOKEN_SHARE) / PIECES / 1000

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps({"data": [{"id": "bench-model"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with slot:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                time.sleep(first)  # the prompt being processed
                for i in range(PIECES):
                    if i:
                        time.sleep(between)
                    self._event({"choices": [{"text": f"t{i} ", "finish_reason": None}]})
                self._event({"choices": [{"text": "", "finish_reason": "stop"}]})
                self._event("[DONE]")
                self.wfile.write(b"0\r\n\r\n")

        def _event(self, payload: object) -> None:
            data = f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    httpd.daemon_threads = True
    httpd.serve_forever(poll_interval=0.05)


class Server:
    """A fake server process that can be killed and started again on the same port."""

    def __init__(self, latency_ms: float) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.latency_ms = latency_ms
        self.proc: subprocess.Popen | None = None
        self.start_s = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [sys.executable, __file__, "--serve", str(self.port), "--latency-ms", str(self.latency_ms)]
        began = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        deadline = began + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    self.start_s = round(time.monotonic() - began, 2)  # a loaded machine starts slowly
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the fake server on {self.port} did not start") from None
                time.sleep(0.02)  # polling while the process starts

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


# -- the load -----------------------------------------------------------------------------------------


def load(pool, clients: int, *, requests: int | None = None, seconds: float | None = None) -> dict:
    """`clients` threads completing back to back until `requests` were sent or `seconds` passed."""
    from potion.errors import BackendError

    lock = threading.Lock()
    counts = {"sent": 0, "answered": 0, "failed": 0}
    errors: list[str] = []
    deadline = time.monotonic() + seconds if seconds else None

    def worker() -> None:
        while True:
            with lock:
                if requests is not None and counts["sent"] >= requests:
                    return
                if deadline is not None and time.monotonic() >= deadline:
                    return
                counts["sent"] += 1
            try:
                text = "".join(pool.complete("def f", max_tokens=8))
                ok = text == "".join(f"t{i} " for i in range(PIECES))
                error = None if ok else f"wrong answer {text!r}"
            except BackendError as exc:
                ok, error = False, exc.user_message()
            with lock:
                counts["answered" if ok else "failed"] += 1
                if error and len(errors) < 5:
                    errors.append(error)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {**counts, "wall_s": round(wall, 3), "rps": round(counts["answered"] / wall, 2), "errors": errors}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, a shorter failover run")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="time a fake server takes per answer")
    parser.add_argument("--clients", type=int, default=8, help="concurrent requests")
    parser.add_argument("--requests", type=int, default=None, help="requests per throughput run")
    parser.add_argument("--failover-s", type=float, default=None, help="length of the failover run")
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.latency_ms)
        return 0
    requests = args.requests or (80 if args.quick else 400)
    failover_s = args.failover_s or (12.0 if args.quick else 30.0)

    from potion.backends import BackendPool

    servers = [Server(args.latency_ms), Server(args.latency_ms)]
    try:
        for server in servers:
            server.start()
        options = {"timeout": 10.0, "backoff_s": 0.1, "max_backoff_s": 0.5, "probe_timeout_s": 0.5}
        one = BackendPool([servers[0].url], **options)
        two = BackendPool([s.url for s in servers], **options)
        load(two, args.clients, requests=args.clients * 2)  # warm-up: connections, imports
        log(f"throughput: {requests} requests, {args.clients} clients, {args.latency_ms:g} ms per answer")
        single = load(one, args.clients, requests=requests)
        log(f"  one server:  {single['rps']} answers/s")
        pooled = load(two, args.clients, requests=requests)
        log(f"  two servers: {pooled['rps']} answers/s")

        log(f"failover: {failover_s:g}s; kill one server at 1/3, restart it at 2/3")
        victim = servers[0]
        timers = [
            threading.Timer(failover_s / 3, victim.kill),
            threading.Timer(2 * failover_s / 3, victim.start),
        ]
        for t in timers:
            t.start()
        failover = load(two, args.clients, seconds=failover_s)
        for t in timers:
            t.join()
        restarted = time.monotonic()  # the restart returned (its port accepts) by now
        back = two.servers()[0]
        # Back in rotation: probed after its back-off as requests come; keep a light load until it is.
        while not back.up and time.monotonic() - restarted < 10:
            load(two, 1, requests=1)
        recovery_s = round(time.monotonic() - restarted, 2) if back.up else None
        answered = f"{failover['answered']}/{failover['sent']}"
        log(f"  {answered} answered; back in rotation: {back.up} ({recovery_s}s after the run)")
        for error in failover["errors"]:
            log(f"  error: {error}")
        one.close()
        two.close()
    finally:
        for server in servers:
            server.kill()

    speedup = round(pooled["rps"] / single["rps"], 3) if single["rps"] else 0.0
    answered = round(failover["answered"] / failover["sent"], 4) if failover["sent"] else 0.0
    result = {
        "bench": "serving_pool",
        "quick": args.quick,
        "latency_ms": args.latency_ms,
        "clients": args.clients,
        "pool_speedup": speedup,
        "answered_during_failover": answered,
        "targets": {"pool_speedup": 1.8, "answered_during_failover": 0.99},
        "met": {"pool_speedup": speedup >= 1.8, "answered_during_failover": answered >= 0.99},
        "one_server": single,
        "two_servers": pooled,
        "failover": {
            **failover,
            "recovered": back.up,
            "recovery_s_after_the_run": recovery_s,
            "restart_s": victim.start_s,
        },
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
