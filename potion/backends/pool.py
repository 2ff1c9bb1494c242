"""A pool of OpenAI-compatible servers behind one `Backend`: least-outstanding routing and failover.

Guarantees:
- A request goes to the healthy server with the fewest requests in flight from this process (ties go
  round-robin, so a quiet pool still spreads its load).
- A server that refuses the connection, answers 5xx or 429, stalls past `timeout` (before the first token
  or between two), sends garbage, or drops a stream mid-answer is marked down: a circuit breaker keeps it
  out for a back-off that doubles with each consecutive failure (`backoff_s` .. `max_backoff_s`). When the
  back-off ends a health probe (`OpenAIBackend.ping`) decides: up again, or down for the next back-off.
  While another server is up the probe runs on a thread of its own; when none is, the request probes.
- The failed request is retried once on another server, but only while nothing of its answer was given
  to the caller. Once text was yielded it ends with a BackendError saying the answer is incomplete: a
  retry would repeat text the user has already seen.
- Every server down: one BackendUnavailable naming each server and why, at once (no waiting); the next
  request after a back-off probes again, so the pool recovers by itself when a server returns.
- A server that rejects the request itself (4xx other than 408/429: a bad model name, a prompt too long)
  is not marked down and the request is not retried: another server would say the same.

The servers are expected to serve the same model: `info` and `tokenize` come from whichever is healthy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NoReturn

from potion.backends.base import CancelToken, GenerationStats, ModelInfo
from potion.backends.openai import OpenAIBackend
from potion.errors import BackendError, BackendUnavailable, ServerRejected

Clock = Callable[[], float]


def parse_urls(value: str | Sequence[str] | None) -> list[str]:
    """Server URLs from a setting or flag: one URL, a comma-separated string, or a list of URLs.

    Raises ValueError naming the bad entry (not http(s), empty, given twice); [] for None or blank.
    """
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    urls: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"a server URL must be a string, got {item!r}")
        url = item.strip()
        if not url:
            if isinstance(value, str) and not value.strip():
                return []
            raise ValueError(f"an empty server URL in {value!r}")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {url!r} (use e.g. http://127.0.0.1:8080)")
        key = url.rstrip("/").removesuffix("/v1")
        if any(u.rstrip("/").removesuffix("/v1") == key for u in urls):
            raise ValueError(f"the server {url} is listed twice")
        urls.append(url)
    return urls


@dataclass(eq=False)  # compared by identity: the pool holds one per server
class ServerState:
    """One server of the pool as the pool sees it (read it through `BackendPool.servers()`)."""

    url: str
    backend: OpenAIBackend
    outstanding: int = 0
    up: bool = True
    failures: int = 0  # consecutive
    down_until: float = 0.0
    last_error: str | None = None
    probing: bool = False
    served: int = 0
    failed: int = 0


class BackendPool:
    """Several OpenAI-compatible servers of the same model as one Backend. Lazy like OpenAIBackend."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        n_ctx: int = 4096,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        probe_timeout_s: float = 2.0,
        clock: Clock = time.monotonic,
    ) -> None:
        try:
            urls = parse_urls(urls)
        except ValueError as exc:
            raise BackendError(
                str(exc), hint="potion.backendUrl / --url takes URLs separated by commas"
            ) from exc
        if not urls:
            raise BackendError(
                "a pool needs at least one server URL", hint="e.g. --url http://a:8080,http://b:8080"
            )
        self.model = model
        self.n_ctx = n_ctx
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.probe_timeout_s = probe_timeout_s
        self._clock = clock
        self._servers = [
            ServerState(url, OpenAIBackend(url, model=model, api_key=api_key, timeout=timeout, n_ctx=n_ctx))
            for url in urls
        ]
        self._lock = threading.Lock()
        self._turn = 0
        self.last_stats = GenerationStats()

    # -- state -------------------------------------------------------------------------------------

    def servers(self) -> list[ServerState]:
        """The servers in the order given (a snapshot is not taken: for status displays and tests)."""
        return list(self._servers)

    def _mark_down(self, server: ServerState, exc: BackendError) -> None:
        with self._lock:
            server.failures += 1
            server.failed += 1
            server.up = False
            delay = min(self.max_backoff_s, self.backoff_s * 2 ** (server.failures - 1))
            server.down_until = self._clock() + delay
            server.last_error = exc.message

    def _mark_up(self, server: ServerState) -> None:
        with self._lock:
            server.up, server.failures, server.last_error = True, 0, None

    def _probe(self, server: ServerState) -> bool:
        """Ask a server whose back-off ended whether it is back; updates its state."""
        try:
            server.backend.ping(timeout=self.probe_timeout_s)
        except BackendError as exc:
            self._mark_down(server, exc)
            ok = False
        else:
            self._mark_up(server)
            ok = True
        with self._lock:
            server.probing = False
        return ok

    def _probe_in_background(self, server: ServerState) -> None:
        threading.Thread(target=self._probe, args=(server,), name="potion-pool-probe", daemon=True).start()

    def _due(self, server: ServerState, now: float) -> bool:
        """A down server whose back-off has ended and that nobody is probing yet (claims the probe)."""
        if server.up or server.probing or now < server.down_until:
            return False
        server.probing = True
        return True

    def _acquire(self, exclude: Sequence[ServerState] = ()) -> ServerState:
        """The healthy server with the fewest requests in flight, counted as busy with one more."""
        while True:
            with self._lock:
                now = self._clock()
                due = [s for s in self._servers if s not in exclude and self._due(s, now)]
                healthy = [s for s in self._servers if s.up and s not in exclude]
                if healthy:
                    start = self._turn % len(self._servers)
                    self._turn += 1
                    order = self._servers[start:] + self._servers[:start]
                    best = min((s for s in order if s in healthy), key=lambda s: s.outstanding)
                    best.outstanding += 1
            if healthy:
                for server in due:
                    self._probe_in_background(server)
                return best
            if not due:
                raise self._all_down(exclude)
            # Nothing is up: probe now (in order), the request waits at most a probe timeout per server.
            for i, server in enumerate(due):
                if self._probe(server):
                    with self._lock:
                        for other in due[i + 1 :]:
                            other.probing = False
                    break

    def _release(self, server: ServerState, *, ok: bool) -> None:
        with self._lock:
            server.outstanding -= 1
            if ok:
                server.served += 1

    def _all_down(self, exclude: Sequence[ServerState]) -> BackendUnavailable:
        now = self._clock()
        with self._lock:
            reasons = "; ".join(
                f"{s.url}: {s.last_error or 'failed'}" for s in self._servers if not s.up or s in exclude
            )
            waits = [max(0.0, s.down_until - now) for s in self._servers if not s.up]
        if len(self._servers) == 1:
            what = "the only server of the pool is down"
        elif exclude and len(exclude) == len(self._servers):
            what = f"all {len(self._servers)} servers of the pool failed this request"
        else:
            what = f"all {len(self._servers)} servers of the pool are down"
        retry = f"the next check is in {min(waits):.1f}s; " if waits else ""
        return BackendUnavailable(
            f"{what} ({reasons})", hint=f"{retry}start one of them or fix potion.backendUrl / --url"
        )

    def _raise_final(self, exc: BackendError) -> NoReturn:
        """End a request after its retry: with its own error, or the pool's state when nothing is up."""
        with self._lock:
            anything_up = any(s.up for s in self._servers)
        if anything_up:
            raise exc
        raise self._all_down(()) from exc

    # -- Backend -----------------------------------------------------------------------------------

    @property
    def info(self) -> ModelInfo:
        """The model of the first healthy server (the servers are expected to serve the same model)."""
        with self._lock:
            server = next((s for s in self._servers if s.up), self._servers[0])
        return server.backend.info

    def load(self) -> None:
        """Check that at least one server answers; the ones that do not are marked down."""
        errors: list[BackendError] = []
        for server in self._servers:
            try:
                server.backend.load()
            except BackendError as exc:
                self._mark_down(server, exc)
                errors.append(exc)
            else:
                self._mark_up(server)
        if len(errors) == len(self._servers):
            raise self._all_down(())

    def _with_server(self, fn: Callable[[OpenAIBackend], list[int]]) -> list[int]:
        tried: list[ServerState] = []
        while True:
            server = self._acquire(tried)
            try:
                result = fn(server.backend)
            except ServerRejected:
                self._release(server, ok=False)
                raise
            except BackendError as exc:
                self._release(server, ok=False)
                self._mark_down(server, exc)
                tried.append(server)
                if len(tried) > 1:
                    self._raise_final(exc)
                continue
            self._release(server, ok=True)
            return result

    def tokenize(self, text: str) -> list[int]:
        return self._with_server(lambda backend: backend.tokenize(text))

    def _generate(
        self, call: Callable[[OpenAIBackend], Iterator[str]], cancel: CancelToken | None
    ) -> Iterator[str]:
        tried: list[ServerState] = []
        while True:
            server = self._acquire(tried)
            shown = False
            ok = False
            stream = None
            try:
                stream = call(server.backend)
                for piece in stream:
                    shown = True
                    yield piece
                ok = True
            except ServerRejected:
                raise
            except BackendError as exc:
                if cancel is not None and cancel.is_set():
                    return  # the caller gave up on it: not the server's fault
                self._mark_down(server, exc)
                if shown:
                    raise BackendError(
                        f"{server.url} failed mid-answer, after part of it was shown: {exc.message}",
                        hint="the answer is incomplete; ask again and the pool sends it to another server",
                    ) from exc
                tried.append(server)
                if len(tried) > 1 or len(self._servers) == 1:
                    self._raise_final(exc)
                continue  # retried once, on another server
            finally:
                if stream is not None:
                    stream.close()  # a caller that stopped reading: the connection closes now, not at GC
                self._release(server, ok=ok)
                self.last_stats = server.backend.last_stats
            return

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
        return self._generate(
            lambda b: b.complete(
                prompt,
                max_tokens=max_tokens,
                stop=stop,
                cancel=cancel,
                temperature=temperature,
                indent=indent,
            ),
            cancel,
        )

    def chat(
        self,
        messages: Sequence[dict[str, str]],
        *,
        max_tokens: int = 512,
        stop: Sequence[str] = (),
        cancel: CancelToken | None = None,
        temperature: float = 0.2,
    ) -> Iterator[str]:
        return self._generate(
            lambda b: b.chat(
                messages, max_tokens=max_tokens, stop=stop, cancel=cancel, temperature=temperature
            ),
            cancel,
        )

    def close(self) -> None:
        for server in self._servers:
            server.backend.close()


__all__ = ["BackendPool", "ServerState", "parse_urls"]
