"""The HTTP client Hex.pm and GitHub sources share: User-Agent, retries with backoff on 5xx, timeouts and
truncated bodies, `Retry-After` on 429/403, `x-ratelimit-*` waits, and ETag revalidation from a cache.

A request that still fails after its retries raises FetchError with the URL and the last cause, so a
build stops with a clear message (its work state keeps what was done) rather than writing a partial
dataset. Waiting is done through `sleep`, which tests replace to run without real delays.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from corpus.errors import FetchError

USER_AGENT = "potion-corpus/0.1 (+https://github.com/potion; Elixir training corpus builder)"


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


@dataclass
class Http:
    headers: dict[str, str] = field(default_factory=dict)
    cache: Path | None = None  # ETag cache folder
    retries: int = 4
    backoff: float = 1.0  # first wait; doubles per retry
    max_wait: float = 300.0  # longest single wait a rate limit may impose before giving up
    timeout: float = 30.0
    max_bytes: int = 64 << 20
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    transport: httpx.BaseTransport | None = None

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip", **self.headers},
            timeout=self.timeout,
            follow_redirects=True,
            transport=self.transport,
        )
        self._not_before = 0.0  # set from x-ratelimit-* when the budget is spent

    def close(self) -> None:
        self.client.close()

    def wait(self, seconds: float, url: str, why: str) -> None:
        if seconds > self.max_wait:
            raise FetchError(
                f"{url}: {why}, asked to wait {seconds:.0f}s (more than {self.max_wait:.0f}s)",
                hint="try again later, or raise the wait budget",
            )
        if seconds > 0:
            self.sleep(seconds)

    def _note_budget(self, headers: httpx.Headers) -> None:
        remaining = headers.get("x-ratelimit-remaining")
        reset = headers.get("x-ratelimit-reset")
        if remaining is not None and reset and remaining.strip() == "0":
            try:
                self._not_before = float(reset)
            except ValueError:
                pass

    def _cache_paths(self, url: str, body: bytes | None) -> tuple[Path, Path] | None:
        if self.cache is None:
            return None
        key = hashlib.sha256(url.encode() + (body or b"")).hexdigest()[:32]
        return self.cache / f"{key}.json", self.cache / f"{key}.body"

    def request(self, method: str, url: str, *, json_body: dict | None = None) -> bytes:
        """The response body of a 2xx (or a 304 served from the ETag cache); FetchError otherwise."""
        body = json.dumps(json_body, sort_keys=True).encode() if json_body is not None else None
        paths = self._cache_paths(url, body) if method == "GET" else None
        headers = {}
        if paths and paths[0].is_file() and paths[1].is_file():
            headers["If-None-Match"] = json.loads(paths[0].read_text())["etag"]
        last = "no attempt"
        for attempt in range(self.retries + 1):
            wait_budget = self._not_before - self.clock()
            if wait_budget > 0:
                self.wait(wait_budget, url, "rate limit spent")
            try:
                status, resp_headers, content = self._send(method, url, headers, body)
            except (httpx.TimeoutException, httpx.TransportError, _Truncated) as exc:
                last = f"{type(exc).__name__}: {exc}"
                self.wait(self.backoff * 2**attempt, url, last)
                continue
            self._note_budget(resp_headers)
            if status == 304 and paths:
                return paths[1].read_bytes()
            if 200 <= status < 300:
                etag = resp_headers.get("etag")
                if paths and etag:
                    paths[0].parent.mkdir(parents=True, exist_ok=True)
                    paths[1].write_bytes(content)
                    paths[0].write_text(json.dumps({"etag": etag, "url": url}))
                return content
            last = f"HTTP {status}"
            limited = status == 429 or (
                status == 403
                and ("retry-after" in resp_headers or resp_headers.get("x-ratelimit-remaining") == "0")
            )
            if limited:
                delay = retry_after(resp_headers.get("retry-after"), self.clock())
                if delay is None and resp_headers.get("x-ratelimit-reset"):
                    delay = max(0.0, float(resp_headers["x-ratelimit-reset"]) - self.clock())
                self.wait(delay if delay is not None else self.backoff * 2**attempt, url, "rate limited")
                continue
            if status >= 500:
                self.wait(self.backoff * 2**attempt, url, last)
                continue
            raise FetchError(f"{url}: {last}", hint="check the source's name and URL")
        raise FetchError(
            f"{url}: still failing after {self.retries + 1} attempts ({last})",
            hint="the server is unreachable or overloaded; rerun the build later to resume",
        )

    def _send(
        self, method: str, url: str, headers: dict, body: bytes | None
    ) -> tuple[int, httpx.Headers, bytes]:
        if body is not None:
            headers = {**headers, "Content-Type": "application/json"}
        with self.client.stream(method, url, headers=headers, content=body) as resp:
            declared = resp.headers.get("content-length")
            chunks, size = [], 0
            for chunk in resp.iter_raw():
                size += len(chunk)
                if size > self.max_bytes:
                    raise FetchError(f"{url}: body over {self.max_bytes >> 20} MiB", hint="refused")
                chunks.append(chunk)
            raw = b"".join(chunks)
            if declared is not None and declared.isdigit() and int(declared) != len(raw):
                raise _Truncated(f"body has {len(raw)} of {declared} bytes")
            return resp.status_code, resp.headers, _decode(resp.headers, raw, url)


class _Truncated(Exception):
    pass


def _decode(headers: httpx.Headers, raw: bytes, url: str) -> bytes:
    if headers.get("content-encoding", "").lower() != "gzip":
        return raw
    import gzip
    import zlib

    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise _Truncated(f"{url}: corrupt gzip body ({exc})") from exc
