"""A scripted OpenAI-compatible server on 127.0.0.1 for tests: SSE streaming, failures on demand.

    with FakeOpenAIServer(pieces=["def", " x"]) as server:
        backend = OpenAIBackend(server.url)

`mode` picks the behaviour of the generation endpoints:
  "ok"          stream each piece as an event, then `data: [DONE]`
  "drop"        stream `drop_after` pieces, then cut the connection mid-chunk
  "no_done"     stream every piece, then close cleanly without [DONE] or a finish_reason
  "error"       answer `error_status` with an OpenAI-style JSON error body
  "error_event" stream `drop_after` pieces (default one), then an `{"error": ...}` event
  "garbage"     stream `drop_after` pieces (default one), then an event that is not JSON
  "gated"       wait for `gate` before each piece after the first (for cancellation tests)
  "stall"       send the response headers, then nothing until `gate` is set (a hung server)

`port` binds a given port (0: any free one), so a test can stop a server and start it again there.

Every request is recorded in `requests` as (method, path, json body or None, headers).
`tokenize=True` serves llama-server's `/tokenize` with one token per character, except that strings
in `special_tokens` count as one token each; `props` serves `/props` when not None.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAIServer:
    def __init__(
        self,
        pieces: list[str] | None = None,
        *,
        mode: str = "ok",
        drop_after: int = 1,
        error_status: int = 500,
        error_message: str = "model exploded",
        model_id: str = "fake-model",
        models: bool = True,
        tokenize: bool = False,
        special_tokens: tuple[str, ...] = (),
        props: dict[str, Any] | None = None,
        port: int = 0,
    ) -> None:
        self.pieces = pieces if pieces is not None else ["hello", " world"]
        self.mode = mode
        self.drop_after = drop_after
        self.error_status = error_status
        self.error_message = error_message
        self.model_id = model_id
        self.models = models
        self.tokenize = tokenize
        self.special_tokens = special_tokens
        self.props = props
        self.requests: list[tuple[str, str, Any, dict[str, str]]] = []
        self.gate = threading.Event()
        self.client_gone = threading.Event()  # set when a write fails: the client closed the stream
        self.streams_finished = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.gate.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        # Like a server process that exits: its keep-alive connections go too, not only the listener.
        for conn in list(self._connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed
                pass
        self._thread.join(timeout=5)

    def bodies(self, path: str) -> list[Any]:
        return [body for _, p, body, _ in self.requests if p == path]

    def count_tokens(self, text: str) -> list[int]:
        tokens: list[int] = []
        i = 0
        while i < len(text):
            special = next((s for s in self.special_tokens if text.startswith(s, i)), None)
            if special:
                tokens.append(100000 + self.special_tokens.index(special))
                i += len(special)
            else:
                tokens.append(ord(text[i]))
                i += 1
        return tokens

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def setup(self) -> None:
                super().setup()
                server._connections.add(self.connection)

            def finish(self) -> None:
                server._connections.discard(self.connection)
                super().finish()

            def _record(self, body: Any) -> None:
                server.requests.append((self.command, self.path, body, dict(self.headers)))

            def _json(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._record(None)
                if self.path == "/v1/models" and server.models:
                    self._json(200, {"object": "list", "data": [{"id": server.model_id, "object": "model"}]})
                elif self.path == "/props" and server.props is not None:
                    self._json(200, server.props)
                else:
                    self._json(404, {"error": {"message": "not found", "code": 404}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = raw.decode(errors="replace")
                self._record(body)
                if self.path == "/tokenize" and server.tokenize:
                    self._json(200, {"tokens": server.count_tokens(body.get("content", ""))})
                elif self.path in ("/v1/completions", "/v1/chat/completions"):
                    self._generate(chat=self.path.endswith("chat/completions"))
                else:
                    self._json(404, {"error": {"message": f"no route {self.path}", "code": 404}})

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            def _event(self, payload: Any) -> None:
                text = payload if isinstance(payload, str) else json.dumps(payload)
                self._chunk(f"data: {text}\n\n".encode())

            def _piece(self, text: str, chat: bool, finish: str | None = None) -> dict[str, Any]:
                if chat:
                    choice: dict[str, Any] = {"index": 0, "delta": {"content": text}, "finish_reason": finish}
                else:
                    choice = {"index": 0, "text": text, "finish_reason": finish}
                return {"id": "x", "object": "text_completion", "choices": [choice]}

            def _generate(self, chat: bool) -> None:
                if server.mode == "error":
                    message = {"error": {"message": server.error_message, "type": "server_error"}}
                    self._json(server.error_status, message)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for i, piece in enumerate(server.pieces):
                        if server.mode == "drop" and i >= server.drop_after:
                            # Half a chunk, then a hard close: the client sees an incomplete chunked body.
                            self.wfile.write(b'40\r\ndata: {"choi')
                            self.wfile.flush()
                            self.connection.shutdown(socket.SHUT_RDWR)
                            return
                        if server.mode == "stall":
                            server.gate.wait(timeout=10)
                            return
                        if server.mode == "error_event" and i >= server.drop_after:
                            self._event({"error": {"message": server.error_message}})
                            break
                        if server.mode == "garbage" and i >= server.drop_after:
                            self._event("{not json")
                            break
                        if server.mode == "gated" and i >= 1:
                            server.gate.wait(timeout=10)
                        self._event(self._piece(piece, chat))
                    if server.mode == "ok":
                        self._event(self._piece("", chat, finish="stop"))
                        self._event("[DONE]")
                    if server.mode == "gated":
                        # Keep writing keep-alive comments until the client hangs up (or 10 s pass).
                        for _ in range(1000):
                            self._chunk(b": keep-alive\n\n")
                            if server.client_gone.wait(timeout=0.01):
                                return
                    self._chunk(b"")
                except (BrokenPipeError, ConnectionResetError):
                    server.client_gone.set()
                finally:
                    server.streams_finished.set()

        return Handler
