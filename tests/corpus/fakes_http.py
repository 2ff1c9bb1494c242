"""A scripted HTTP server on 127.0.0.1 for the Hex.pm and GitHub clients: it misbehaves on demand.

    with FakeHttpServer() as server:
        server.script("GET", "/api/packages?page=1", Reply(429, headers={"Retry-After": "0"}),
                      Reply(200, json=[...]))

Each route answers its replies in order, the last one repeating. `Reply.mode`: "ok", "truncate" (declares
the full Content-Length, sends half, closes), "slow" (holds the answer until the client has given up:
the server waits on an event set at shutdown), "etag" (304 when If-None-Match matches `etag`).
Unscripted routes answer 404. Requests are recorded as (method, path, headers, body).
"""

from __future__ import annotations

import json as jsonlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    mode: str = "ok"
    etag: str | None = None

    def payload(self) -> bytes:
        return jsonlib.dumps(self.json).encode() if self.json is not None else self.body


class FakeHttpServer:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.shutdown = threading.Event()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, method: str, path: str, *replies: Reply) -> None:
        self.routes[(method, path)] = list(replies)

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _, _ in self.requests if m == method and p == path)

    def __enter__(self) -> FakeHttpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next(self, method: str, path: str) -> Reply | None:
        with self._lock:
            replies = self.routes.get((method, path)) or self.routes.get((method, path.split("?")[0]))
            if not replies:
                return None
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append((self.command, self.path, dict(self.headers), body))
                reply = server._next(self.command, self.path)
                if reply is None:
                    reply = Reply(404, json={"message": "not found"})
                if reply.mode == "slow":
                    server.shutdown.wait(10)
                    return
                payload = reply.payload()
                status = reply.status
                if reply.mode == "etag" and reply.etag and self.headers.get("If-None-Match") == reply.etag:
                    status, payload = 304, b""
                self.send_response(status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                if reply.etag:
                    self.send_header("ETag", reply.etag)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if reply.mode == "truncate":
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(payload)

            do_GET = _serve
            do_POST = _serve

        return Handler
