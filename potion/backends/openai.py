"""OpenAI-compatible HTTP servers (llama-server, vLLM, Ollama, llama_cpp.server): the route to shared GPUs.

Completions and chat stream as server-sent events (`data: {...}` lines ending with `data: [DONE]`).
Cancelling closes the stream, which tells the server to stop generating. Every failure becomes a one-line
`BackendError` naming the URL and the fix.

`tokenize` asks the server (`/tokenize` of llama-server and vLLM, `/extras/tokenize` of llama_cpp.server).
Servers without one (Ollama, hosted APIs) get an estimate of one token per 3 bytes of UTF-8: code is
denser in tokens than prose, so this overestimates and prompts stay within budget.
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx

from potion.backends.base import CancelToken, GenerationStats, ModelInfo, indent_grammar
from potion.backends.stops import StopMatcher
from potion.errors import BackendError, BackendUnavailable, ServerRejected
from potion.prompts import FAMILY_SIGNATURES, UNKNOWN, fim_tokens

BYTES_PER_TOKEN_ESTIMATE = 3

# Model names served by Ollama or vLLM say what they are when no tokenizer endpoint can tell.
_NAME_HINTS = (
    ("qwen2.5-coder", "qwen2.5-coder"),
    ("qwen2.5coder", "qwen2.5-coder"),
    ("codegemma", "codegemma"),
    ("codestral", "codestral"),
    ("devstral", "codestral"),
    ("starcoder2", "starcoder2"),
    ("starcoder", "starcoder"),
    ("deepseek-coder", "deepseek-coder"),
    ("codellama", "codellama"),
    ("code-llama", "codellama"),
)


def _error_message(response: httpx.Response) -> str:
    """The server's own words from an error response (OpenAI, llama-server, FastAPI shapes)."""
    raw = response.read()
    try:
        body = json.loads(raw)
    except ValueError:  # not JSON (also covers bad UTF-8)
        text = raw.decode("utf-8", "replace").strip()
        return text.splitlines()[0][:200] if text else response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body.get("message", body)))
        if isinstance(error, dict):
            error = error.get("message", error)
        body = error
    text = str(body).strip()
    return text.splitlines()[0][:200] if text else response.reason_phrase


def _status_hint(status: int) -> str:
    if status in (401, 403):
        return "check the API key (POTION_API_KEY)"
    if status == 404:
        return "check --url: give the server root, e.g. http://127.0.0.1:8080"
    if status in (400, 422):
        return "the server rejected the request; check the model name and its context size"
    return "check the server's log"


def _shutdown(response: httpx.Response) -> None:
    # close() from another thread does not wake a recv() blocked on the socket; shutdown() does, and the
    # reader then sees the stream end.
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already closed by the server
            pass
    else:
        response.close()


@contextmanager
def _closed_on(cancel: CancelToken | None, response: httpx.Response) -> Iterator[None]:
    """Close `response` as soon as `cancel` is set, even while a read is blocked waiting for the server
    (a long prompt being processed): checking only between events would wait for the next one."""
    if cancel is None:
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if cancel.wait(timeout=0.05):
                if not done.is_set():
                    _shutdown(response)
                return

    watcher = threading.Thread(target=watch, name="potion-cancel-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()


class OpenAIBackend:
    """A model behind an OpenAI-compatible server. Lazy: the server is first contacted by a call."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        n_ctx: int = 4096,
    ) -> None:
        root = base_url.rstrip("/")
        if root.endswith("/v1"):
            root = root[: -len("/v1")]
        if not root.startswith(("http://", "https://")):
            raise BackendError(
                f"not an http(s) URL: {base_url!r}", hint="use e.g. --url http://127.0.0.1:8080"
            )
        self.base_url = root
        self.model = model
        self.n_ctx = n_ctx
        self.timeout = timeout
        key = api_key if api_key is not None else os.environ.get("POTION_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        # A generous read timeout: a long prompt on a busy server can take a while to produce a first token.
        self._client = httpx.Client(
            headers=headers, timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0))
        )
        self.last_stats = GenerationStats()
        self._info: ModelInfo | None = None
        self._models: list[dict[str, Any]] | None = None
        self._tokenize_route: str | None | bool = None  # None: not probed, False: none, str: the path

    # -- plumbing ----------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.request(method, self._url(path), **kwargs)
        except httpx.ConnectError as exc:
            raise BackendUnavailable(
                f"cannot connect to {self.base_url}",
                hint="start the server (e.g. llama-server -m MODEL.gguf --port 8080) or fix --url",
            ) from exc
        except httpx.TimeoutException as exc:
            raise BackendError(
                f"{self.base_url} did not answer within {self.timeout:g}s",
                hint="the server may be overloaded; retry or raise the timeout",
            ) from exc
        except httpx.HTTPError as exc:
            raise BackendError(f"request to {self.base_url} failed: {exc}", hint="check the server") from exc

    def _get_json(self, path: str) -> Any | None:
        """GET a JSON document, or None when the server has no such endpoint."""
        response = self._request("GET", path)
        if response.status_code >= 400:
            if response.status_code in (401, 403):
                raise BackendError(
                    f"{self.base_url} answered {response.status_code}: {_error_message(response)}",
                    hint=_status_hint(response.status_code),
                )
            return None
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None

    def ping(self, *, timeout: float = 2.0) -> None:
        """A health probe: returns when the server answers HTTP (any status below 500) within `timeout`,
        else raises BackendError. Cheap: one GET of /v1/models, nothing cached."""
        try:
            response = self._client.get(self._url("/v1/models"), timeout=timeout)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"{self.base_url} does not answer: {type(exc).__name__}", hint="start the server or fix --url"
            ) from exc
        if response.status_code >= 500:
            raise BackendError(
                f"{self.base_url} answered {response.status_code}", hint="check the server's log"
            )

    # -- model facts -------------------------------------------------------------------------------

    def load(self) -> None:
        """Check that the server answers and learn its model."""
        if self._models is None:
            listing = self._get_json("/v1/models")
            data = listing.get("data") if isinstance(listing, dict) else None
            self._models = [m for m in data if isinstance(m, dict)] if isinstance(data, list) else []

    def _model_id(self) -> str | None:
        self.load()
        if self.model:
            return self.model
        return str(self._models[0].get("id")) if self._models else None

    @property
    def info(self) -> ModelInfo:
        """What the server says about its model. While it cannot be reached, a provisional answer from
        the configured name (not cached, so the next read asks again): a property that raised would also
        break `isinstance(x, Backend)`, which reads every protocol member on Python 3.11."""
        if self._info is None:
            try:
                self._info = self._read_info()
            except BackendError:
                family = self._family_from_name(self.model or "")
                return ModelInfo(
                    name=self.model or self.base_url,
                    family=family,
                    n_ctx=self.n_ctx,
                    fim_tokens=fim_tokens(family),
                )
        return self._info

    def _read_info(self) -> ModelInfo:
        name = self._model_id() or self.base_url
        n_ctx, chat_template = self.n_ctx, None
        entry = next((m for m in self._models or [] if m.get("id") == name), {})
        if isinstance(entry.get("max_model_len"), int):  # vLLM
            n_ctx = entry["max_model_len"]
        props = self._get_json("/props")  # llama-server only
        if isinstance(props, dict):
            settings = props.get("default_generation_settings") or {}
            n_ctx = int(settings.get("n_ctx") or props.get("n_ctx") or n_ctx)
            chat_template = props.get("chat_template") or None
        family = self._family_from_vocab() or self._family_from_name(name)
        return ModelInfo(
            name=name, family=family, n_ctx=n_ctx, fim_tokens=fim_tokens(family), chat_template=chat_template
        )

    def _family_from_vocab(self) -> str | None:
        """A family whose markers each tokenize to a single token on this server, if it can tokenize."""
        if not self._tokenize_probe():
            return None
        baseline = len(self.tokenize(""))  # a BOS some servers always add
        single: dict[str, bool] = {}

        def is_single(token: str) -> bool:
            if token not in single:
                single[token] = len(self.tokenize(token)) - baseline == 1
            return single[token]

        for family, tokens in FAMILY_SIGNATURES:
            if all(is_single(t) for t in sorted(tokens)):
                return family
        return UNKNOWN

    @staticmethod
    def _family_from_name(name: str) -> str:
        lowered = name.lower()
        return next((family for hint, family in _NAME_HINTS if hint in lowered), UNKNOWN)

    # -- tokens ------------------------------------------------------------------------------------

    def _tokenize_probe(self) -> bool:
        if self._tokenize_route is None:
            found: str | bool = False
            for route in ("/tokenize", "/extras/tokenize"):
                if self._server_tokenize(route, "x") is not None:
                    found = route
                    break
            # Only an answer settles it: a server that was unreachable is asked again next time.
            self._tokenize_route = found
        return bool(self._tokenize_route)

    def _server_tokenize(self, route: str, text: str) -> list[int] | None:
        # One body for the three dialects: llama-server reads `content`, vLLM `prompt`, llama_cpp.server
        # `input`; each ignores the others' fields.
        body: dict[str, Any] = {"content": text, "prompt": text, "input": text, "add_special": False}
        model = self.model or (self._model_id() if self._models is not None else None)
        if model:
            body["model"] = model
        response = self._request("POST", route, json=body)
        if response.status_code >= 400:
            return None
        try:
            tokens = response.json().get("tokens")
        except (json.JSONDecodeError, AttributeError):
            return None
        if not isinstance(tokens, list):
            return None
        return [t["id"] if isinstance(t, dict) else int(t) for t in tokens]

    def tokenize(self, text: str) -> list[int]:
        """Token ids from the server when it can tokenize, else an estimate (ids are all -1)."""
        if self._tokenize_probe():
            assert isinstance(self._tokenize_route, str)
            tokens = self._server_tokenize(self._tokenize_route, text)
            if tokens is not None:
                return tokens
        return [-1] * math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN_ESTIMATE)

    # -- generation --------------------------------------------------------------------------------

    def _stream(
        self, path: str, body: dict[str, Any], stop: Sequence[str], cancel: CancelToken | None
    ) -> Iterator[str]:
        model = self._model_id()
        if model:
            body["model"] = model
        stats = GenerationStats()
        self.last_stats = stats
        stopper = StopMatcher(stop)
        url = self._url(path)
        finished = False
        try:
            with self._client.stream("POST", url, json=body) as response, _closed_on(cancel, response):
                if response.status_code >= 400:
                    # A 4xx is about the request (another server would refuse it too), except 408/429.
                    rejected = response.status_code < 500 and response.status_code not in (408, 429)
                    raise (ServerRejected if rejected else BackendError)(
                        f"{url} answered {response.status_code}: {_error_message(response)}",
                        hint=_status_hint(response.status_code),
                    )
                for line in response.iter_lines():
                    if cancel is not None and cancel.is_set():
                        stats.cancelled = True
                        return  # leaving the `with` closes the connection: the server stops generating
                    if not line.startswith("data:"):
                        continue  # comments, `event:` lines, keep-alives
                    payload = line[len("data:") :].strip()
                    if payload == "[DONE]":
                        finished = True
                        break
                    chunk = self._parse_chunk(url, payload)
                    text, done = self._chunk_text(chunk, stats)
                    if text:
                        stats.completion_tokens += 1
                        out = stopper.feed(text)
                        if out:
                            yield out
                        if stopper.stopped:
                            return
                    finished = finished or done
        except httpx.ConnectError as exc:
            raise BackendUnavailable(
                f"cannot connect to {self.base_url}",
                hint="start the server (e.g. llama-server -m MODEL.gguf --port 8080) or fix --url",
            ) from exc
        except httpx.TimeoutException as exc:
            raise BackendError(
                f"{url} stopped answering for {self.timeout:g}s", hint="the server may be overloaded; retry"
            ) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.StreamClosed) as exc:
            if cancel is not None and cancel.is_set():  # our own watcher closed the stream
                stats.cancelled = True
                return
            raise self._dropped(url) from exc
        if cancel is not None and cancel.is_set() and not finished:
            stats.cancelled = True
            return
        if not finished:
            raise self._dropped(url)
        tail = stopper.flush()
        if tail:
            yield tail

    def _dropped(self, url: str) -> BackendError:
        return BackendError(
            f"{url} dropped the connection mid-stream",
            hint="the server may have crashed or run out of memory; check its log and retry",
        )

    @staticmethod
    def _parse_chunk(url: str, payload: str) -> dict[str, Any]:
        try:
            chunk = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise BackendError(
                f"{url} sent a malformed event: {payload[:80]!r}", hint="is this an OpenAI-compatible server?"
            ) from exc
        if not isinstance(chunk, dict):
            raise BackendError(f"{url} sent an unexpected event: {payload[:80]!r}", hint="check the server")
        if "error" in chunk:
            error = chunk["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise BackendError(
                f"{url} reported an error mid-stream: {message}", hint="check the server's log"
            )
        return chunk

    @staticmethod
    def _chunk_text(chunk: dict[str, Any], stats: GenerationStats) -> tuple[str, bool]:
        """The text of one event and whether it finished the generation; usage/timings go to stats."""
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            stats.prompt_tokens = int(usage.get("prompt_tokens") or stats.prompt_tokens)
            stats.evaluated_prompt_tokens = stats.evaluated_prompt_tokens or stats.prompt_tokens
        timings = chunk.get("timings")  # llama-server: prompt_n counts only tokens not served from cache
        if isinstance(timings, dict) and isinstance(timings.get("prompt_n"), int):
            stats.evaluated_prompt_tokens = timings["prompt_n"]
        choices = chunk.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            return "", False
        choice = choices[0]
        delta = choice.get("delta")
        text = choice.get("text") if delta is None else (delta or {}).get("content")
        return (text or ""), bool(choice.get("finish_reason"))

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
        body: dict[str, Any] = {
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        if stop:
            body["stop"] = list(stop)
        if indent:  # llama-server and llama_cpp.server read a GBNF `grammar`; other servers ignore it
            body["grammar"] = indent_grammar(indent)
        return self._stream("/v1/completions", body, stop, cancel)

    def chat(
        self,
        messages: Sequence[dict[str, str]],
        *,
        max_tokens: int = 512,
        stop: Sequence[str] = (),
        cancel: CancelToken | None = None,
        temperature: float = 0.2,
    ) -> Iterator[str]:
        body: dict[str, Any] = {
            "messages": [dict(m) for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        if stop:
            body["stop"] = list(stop)
        return self._stream("/v1/chat/completions", body, stop, cancel)

    def close(self) -> None:
        self._client.close()
