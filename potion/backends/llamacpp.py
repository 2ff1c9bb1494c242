"""In-process inference with llama-cpp-python, keeping the KV cache of the previous prompt.

Completions in an editor arrive one keystroke apart and share almost all of their prompt. The high-level
`Llama.create_completion` hides how much of the prompt it re-evaluates, so this backend drives the
low-level API itself: tokenize, find the common prefix with the tokens already in the context, drop the KV
cache past it, evaluate only the rest, then sample token by token. That makes the reuse countable
(`last_stats.evaluated_prompt_tokens`) and lets cancellation act between prompt chunks and tokens.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import os
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from potion.backends.base import CancelToken, GenerationStats, ModelInfo, indent_grammar
from potion.backends.stops import StopMatcher
from potion.errors import BackendError, BackendUnavailable, ContextOverflow, ModelCorrupt
from potion.gguf_header import check_gguf, context_length, read_metadata
from potion.prompts import detect_family, fim_tokens

# Prompt tokens are decoded in chunks so that a cancel (the user typed again) is noticed within about a
# second on two cores, instead of after the whole prompt; 256 costs no measurable throughput.
PROMPT_CHUNK = 256


def cpu_cores() -> int:
    """Cores this process may run on (affinity-aware, unlike os.cpu_count)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class _NoRedirect:
    """Stands in for llama_cpp's `suppress_stdout_stderr`, which dup2()s fds 1 and 2 to /dev/null while a
    model loads. That is process-wide: the language server's responses and the chat's screen updates sent
    from other threads meanwhile were lost. With verbose=False llama.cpp's own logs already stop at errors."""

    def __init__(self, disable: bool = True) -> None:
        pass

    def __enter__(self) -> _NoRedirect:
        return self

    def __exit__(self, *_: object) -> None:
        return None


def _import_llama_cpp() -> Any:
    global _log_to_python
    try:
        import llama_cpp
        import llama_cpp._internals
        import llama_cpp.llama
    except ImportError as exc:
        raise BackendUnavailable(
            f"llama-cpp-python is not installed ({exc})",
            hint="pip install 'potion[llama]', or use --url with a llama-server",
        ) from exc
    llama_cpp.llama.suppress_stdout_stderr = _NoRedirect
    llama_cpp._internals.suppress_stdout_stderr = _NoRedirect
    # llama.cpp's C logs go to Python logging instead of straight onto the terminal the chat draws on.
    if _log_to_python is None:
        _log_to_python = llama_cpp.llama_log_callback(_log_to_python_impl)
    llama_cpp.llama_log_set(_log_to_python, ctypes.c_void_p(0))
    return llama_cpp


_llama_log = logging.getLogger("potion.llama_cpp")


def _log_to_python_impl(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    # ggml_log_level: 1 debug, 2 info, 3 warn, 4 error, 5 continuation. Load-time warnings about a model's
    # vocabulary are noise to a user; errors also surface as the exception of the failed call.
    _llama_log.log(logging.ERROR if level == 4 else logging.DEBUG, text.decode("utf-8", "replace").rstrip())


# The ctypes callback must stay referenced for as long as llama.cpp may call it: a module global.
_log_to_python: Any = None


def header_info(model_path: Path, n_ctx: int) -> ModelInfo:
    """The ModelInfo of a GGUF from its header alone (no weights loaded): name, FIM family, chat template."""
    keys = {"general.name", "tokenizer.ggml.tokens", "tokenizer.chat_template"}
    metadata = read_metadata(model_path, keys=keys)
    family = detect_family(metadata.get("tokenizer.ggml.tokens") or ())
    return ModelInfo(
        name=metadata.get("general.name") or model_path.stem,
        family=family,
        n_ctx=n_ctx or context_length(model_path) or 4096,
        fim_tokens=fim_tokens(family),
        chat_template=metadata.get("tokenizer.chat_template"),
    )


class LlamaCppBackend:
    """A GGUF model run in this process. Lazy: nothing is loaded until `load()` or the first call.

    One generation runs at a time; others wait for the lock. A generator closed early (the consumer
    stopped iterating) releases the lock and leaves the cache consistent.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        lora_path: str | os.PathLike[str] | None = None,
    ):
        self.model_path = Path(model_path)
        # A LoRA adapter GGUF that llama.cpp applies on the base at load time (`BASE + ADAPTER` specs).
        self.lora_path = Path(lora_path) if lora_path is not None else None
        self.n_ctx = n_ctx
        self.n_threads = n_threads or cpu_cores()
        self.last_stats = GenerationStats()
        self._llm: Any = None
        self._info: ModelInfo | None = None
        self._load_lock = threading.Lock()
        self._gen_lock = threading.Lock()
        self._gen_owner: int | None = None
        self._active: weakref.ref[Iterator[str]] | None = None

    # -- loading -----------------------------------------------------------------------------------

    def load(self) -> None:
        with self._load_lock:
            if self._llm is not None:
                return
            llama_cpp = _import_llama_cpp()
            path = self.model_path
            # A truncated file would otherwise be mmapped and crash the process on first touch.
            check_gguf(path)
            if self.lora_path is not None:
                check_gguf(self.lora_path)
            try:
                llm = llama_cpp.Llama(
                    str(path),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    lora_path=str(self.lora_path) if self.lora_path is not None else None,
                    verbose=False,
                )
            except (ValueError, RuntimeError) as exc:
                what = f"{path} with the adapter {self.lora_path}" if self.lora_path else str(path)
                raise ModelCorrupt(
                    f"llama.cpp could not load {what}: {exc}",
                    hint="the file may be truncated, of an unsupported architecture, or an adapter of "
                    "another base; re-download or re-export it",
                ) from exc
            self._llm = llm
            self._vocab = llama_cpp.llama_model_get_vocab(llm.model)

    @property
    def info(self) -> ModelInfo:
        """Read from the GGUF header (about 0.2 s for a 150k vocabulary), without loading the weights:
        callers build prompts before the first generation, and `isinstance(x, Backend)` reads it too."""
        if self._info is None:
            self._info = header_info(self.model_path, self.n_ctx)
        return self._info

    def close(self) -> None:
        """Free the model. A generation still open on this thread is closed first; other threads' finish."""
        active = self._active() if self._active is not None else None
        if active is not None and self._gen_owner == threading.get_ident():
            active.close()  # type: ignore[attr-defined]
        with self._exclusive():
            if self._llm is not None:
                self._llm.close()
                self._llm = None

    def reset_cache(self) -> None:
        """Forget the cached prompt, so the next call evaluates all of its prompt (benchmarks, tests)."""
        with self._exclusive():
            if self._llm is not None:
                self._llm.n_tokens = 0
                self._llm._ctx.kv_cache_clear()

    # -- tokens ------------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        """Tokens of `text` as part of a prompt (special tokens recognised, no BOS): for budgeting."""
        self.load()
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def _prompt_tokens(self, text: str) -> list[int]:
        # add_bos=True means "add the model's special prefix tokens if it wants them" (none for Qwen).
        tokens = self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
        bos = self._llm.token_bos()
        if len(tokens) > 1 and tokens[0] == tokens[1] == bos:  # a chat template that wrote BOS itself
            tokens = tokens[1:]
        return tokens

    def _piece(self, token: int) -> bytes:
        # Special tokens are rendered so that stop strings such as "<|file_sep|>" can match.
        buf = ctypes.create_string_buffer(64)
        llama_cpp = _import_llama_cpp()
        n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, True)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, True)
        return buf.raw[:n]

    # -- generation --------------------------------------------------------------------------------

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        me = threading.get_ident()
        if self._gen_owner == me:
            raise BackendError(
                "a previous generation on this thread is still open",
                hint="exhaust or close() the previous iterator before starting another",
            )
        with self._gen_lock:
            self._gen_owner = me
            try:
                yield
            finally:
                self._gen_owner = None

    def _reuse_prefix(self, tokens: list[int]) -> int:
        """Keep the KV cache of the longest common token prefix; return how many tokens it covers."""
        import numpy as np  # a dependency of llama-cpp-python

        llm = self._llm
        cached = llm.input_ids[: llm.n_tokens]
        limit = min(len(cached), len(tokens))
        differ = np.flatnonzero(cached[:limit] != np.asarray(tokens[:limit], dtype=cached.dtype))
        n = int(differ[0]) if len(differ) else limit
        # The logits of the last prompt token are needed to sample, so at least one token is evaluated.
        n = min(n, len(tokens) - 1)
        if not llm._ctx.kv_cache_seq_rm(-1, n, -1):
            llm._ctx.kv_cache_clear()  # a model whose cache cannot be cut (recurrent): start over
            n = 0
        llm.n_tokens = n
        return n

    def _sampler(self, temperature: float, indent: str = "") -> Any:
        from llama_cpp import LlamaGrammar, _internals

        sampler = _internals.LlamaSampler()
        if indent:  # first in the chain: the other samplers only see tokens the grammar allows
            grammar = LlamaGrammar.from_string(indent_grammar(indent), verbose=False)
            sampler.add_grammar(self._llm._model, grammar)
        if temperature <= 0:
            sampler.add_greedy()
        else:
            sampler.add_top_k(40)
            sampler.add_top_p(0.95, 1)
            sampler.add_min_p(0.05, 1)
            sampler.add_temp(temperature)
            sampler.add_dist(int.from_bytes(os.urandom(4), "little"))
        return sampler

    def _generate(
        self,
        text: str,
        *,
        max_tokens: int,
        stop: Sequence[str],
        cancel: CancelToken | None,
        temperature: float,
        indent: str = "",
    ) -> Iterator[str]:
        self.load()
        llama_cpp = _import_llama_cpp()
        with self._exclusive():
            llm = self._llm
            tokens = self._prompt_tokens(text)
            n_ctx = llm.n_ctx()
            if not tokens:
                raise BackendError("empty prompt", hint="give the model some text to continue")
            if len(tokens) >= n_ctx:
                raise ContextOverflow(
                    f"prompt is {len(tokens)} tokens but the context holds {n_ctx}",
                    hint="shorten the prompt or open the model with a larger n_ctx",
                )
            stats = GenerationStats(prompt_tokens=len(tokens))
            self.last_stats = stats
            start = self._reuse_prefix(tokens)
            for i in range(start, len(tokens), PROMPT_CHUNK):
                if cancel is not None and cancel.is_set():
                    stats.cancelled = True
                    return
                chunk = tokens[i : i + PROMPT_CHUNK]
                llm.eval(chunk)
                stats.evaluated_prompt_tokens += len(chunk)

            sampler = self._sampler(temperature, indent)
            samplers = [sampler]
            # The grammar checks every token of the vocabulary at each step (it doubled the time per token
            # of the default model): once the indentation and one more character are written, the rest
            # is free and a sampler without it takes over.
            constrained = len(indent.encode()) + 1 if indent else 0
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            stopper = StopMatcher(stop)
            try:
                for _ in range(min(max_tokens, n_ctx - len(tokens))):
                    if cancel is not None and cancel.is_set():
                        stats.cancelled = True
                        return
                    token = sampler.sample(llm._ctx, -1)
                    if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                        break
                    stats.completion_tokens += 1
                    piece = self._piece(token)
                    if constrained:
                        constrained = max(constrained - len(piece), 0)
                        if not constrained:
                            sampler = self._sampler(temperature)
                            samplers.append(sampler)
                    out = stopper.feed(decoder.decode(piece))
                    if out:
                        yield out
                    if stopper.stopped:
                        return
                    llm.eval([token])
                tail = stopper.feed(decoder.decode(b"", final=True))
                tail += stopper.flush()
                if tail:
                    yield tail
            finally:
                for used in samplers:
                    used.close()

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
        return self._track(
            self._generate(
                prompt,
                max_tokens=max_tokens,
                stop=stop,
                cancel=cancel,
                temperature=temperature,
                indent=indent,
            )
        )

    def token_logprobs(self, text: str, *, chunk: int = 64) -> list[float]:
        """The log-probability of each token of `text` given the tokens before it (the first token has
        none): for perplexity. Evaluates `text` from an empty context, `chunk` tokens per batch."""
        import numpy as np  # a dependency of llama-cpp-python

        self.load()
        _import_llama_cpp()
        with self._exclusive():
            llm = self._llm
            tokens = self._prompt_tokens(text)
            n_ctx = llm.n_ctx()
            if len(tokens) > n_ctx:
                raise ContextOverflow(
                    f"text is {len(tokens)} tokens but the context holds {n_ctx}",
                    hint="score shorter windows of the text",
                )
            llm._ctx.kv_cache_clear()
            llm.n_tokens = 0
            out: list[float] = []
            n_vocab = llm.n_vocab()
            for start in range(0, len(tokens), chunk):
                batch = tokens[start : start + chunk]
                llm._batch.set_batch(batch=batch, n_past=start, logits_all=True)
                llm._ctx.decode(llm._batch)
                logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(batch) * n_vocab,))
                rows = logits.reshape(len(batch), n_vocab).astype(np.float64)
                rows -= rows.max(axis=1, keepdims=True)
                logz = np.log(np.exp(rows).sum(axis=1))
                for i in range(len(batch)):
                    nxt = start + i + 1
                    if nxt < len(tokens):
                        out.append(float(rows[i, tokens[nxt]] - logz[i]))
            llm.input_ids[: len(tokens)] = tokens
            llm.n_tokens = len(tokens)
            return out

    def _track(self, generation: Iterator[str]) -> Iterator[str]:
        self._active = weakref.ref(generation)  # type: ignore[arg-type]
        return generation

    def chat_prompt(self, messages: Sequence[dict[str, str]]) -> tuple[str, list[str]]:
        """The prompt text for `messages` through the model's own chat template, and its stop strings."""
        self.load()
        template = self.info.chat_template
        eos = self._piece(self._llm.token_eos()).decode("utf-8", "replace")
        if not template:
            # No template in the GGUF: a neutral transcript, which any instruct model continues sensibly.
            lines = [f"{m.get('role', 'user').capitalize()}: {m.get('content', '')}" for m in messages]
            return "\n".join(lines) + "\nAssistant:", [eos, "\nUser:"]
        import jinja2
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        bos_id = self._llm.token_bos()
        bos = self._piece(bos_id).decode("utf-8", "replace") if bos_id >= 0 else ""
        try:
            formatted = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)(messages=list(messages))
        except (jinja2.TemplateError, ValueError, TypeError) as exc:  # raise_exception() is a ValueError
            raise BackendError(
                f"the model's chat template rejected the conversation: {exc}",
                hint="check message roles (system/user/assistant alternate)",
            ) from exc
        return formatted.prompt, [eos]

    def chat(
        self,
        messages: Sequence[dict[str, str]],
        *,
        max_tokens: int = 512,
        stop: Sequence[str] = (),
        cancel: CancelToken | None = None,
        temperature: float = 0.2,
    ) -> Iterator[str]:
        prompt, template_stop = self.chat_prompt(messages)
        return self._track(
            self._generate(
                prompt,
                max_tokens=max_tokens,
                stop=[*template_stop, *stop],
                cancel=cancel,
                temperature=temperature,
            )
        )
