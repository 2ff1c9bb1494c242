"""A scripted backend for the model worker process, so supervision is tested without a model.

The worker imports this module (tests put tests/potion on its PYTHONPATH) and calls `scripted` with
LlamaCppBackend's arguments. What it does comes from `POTION_TEST_WORKER` (JSON), set by the test:
`responses` and `token_delay` as FakeBackend's; `abort_on_load`: the load aborts the process, as a
GGML_ASSERT does; `abort_on`: a prompt whose last line (a chat's latest question) holds this text aborts it
mid-generation; `load_delay`: seconds the load takes; `noisy`: the load writes to stdout, as C code may.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from potion.backends import FakeBackend

ENV = "POTION_TEST_WORKER"


def abort(message: str) -> None:
    print(f"ggml.c:1234: GGML_ASSERT({message}) failed", file=sys.stderr, flush=True)
    os.abort()


class ScriptedWorkerBackend(FakeBackend):
    def __init__(self, script: dict[str, Any]) -> None:
        super().__init__(script.get("responses", ["x = 1"]), token_delay=script.get("token_delay", 0.0))
        self.script = script

    def load(self) -> None:
        if self.script.get("noisy"):
            print("a stray print on stdout")
            os.write(1, b"\x00\x00\x00\x05 bytes written to fd 1 from C\n")
        if self.script.get("load_delay"):
            time.sleep(self.script["load_delay"])  # a large model being read
        if self.script.get("abort_on_load"):
            abort("hparams.n_layer_all > 0 && hparams.n_layer_all <= LLAMA_MAX_LAYERS")
        super().load()

    def _stream(self, text: str, prompt: str, *args: Any) -> Iterator[str]:
        stream = super()._stream(text, prompt, *args)
        marker = self.script.get("abort_on")
        if marker and marker in prompt.rsplit("\n", 1)[-1]:  # the last line: a chat's latest question
            yield next(stream)
            abort("fake crash mid-stream")
        yield from stream

    def reset_cache(self) -> None:
        pass


def scripted(**_backend_args: Any) -> ScriptedWorkerBackend:
    return ScriptedWorkerBackend(json.loads(os.environ.get(ENV, "{}")))
