"""Tokenizers the corpus measures with: a GGUF model's own vocabulary (through llama.cpp, vocabulary
only) and Mistral's Tekken (through mistral-common, as Devstral ships it).

`--model` is a registry name (`qwen2.5-coder-0.5b`), a `.gguf` path, `tekken` (the file in the
mistral-common wheel), or a path to a `tekken*.json`.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from corpus.errors import TokenizerError


class Tokenizer(Protocol):
    name: str

    def encode(self, text: str) -> list[int]: ...

    def piece(self, token: int) -> bytes: ...


def tekken_path() -> Path:
    import mistral_common

    return Path(mistral_common.__file__).parent / "data" / "tekken_240911.json"


@dataclass
class TekkenTokenizer:
    name: str
    path: Path

    def __post_init__(self) -> None:
        from mistral_common.tokens.tokenizers.tekken import Tekkenizer

        self._tok = Tekkenizer.from_file(str(self.path))

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, bos=False, eos=False)

    def piece(self, token: int) -> bytes:
        return self._tok.id_to_byte_piece(token)


@dataclass
class GgufTokenizer:
    name: str
    path: Path

    def __post_init__(self) -> None:
        try:
            import llama_cpp
        except ImportError as exc:
            raise TokenizerError(
                "reading a GGUF vocabulary needs llama-cpp-python", hint="pip install 'potion[llama]'"
            ) from exc
        self._llama_cpp = llama_cpp
        self._llm = llama_cpp.Llama(str(self.path), vocab_only=True, verbose=False)
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        self._buf = ctypes.create_string_buffer(1024)

    def encode(self, text: str) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def piece(self, token: int) -> bytes:
        # llama.cpp's own token_to_piece with a buffer that fits long tokens (Qwen has runs of 80
        # spaces; Llama.detokenize's 32-byte buffer returns them empty)
        n = self._llama_cpp.llama_token_to_piece(self._vocab, token, self._buf, len(self._buf), 0, True)
        if n < 0:
            raise TokenizerError(f"token {token} is longer than {len(self._buf)} bytes", hint="report it")
        return self._buf.raw[:n]


def load_tokenizer(spec: str) -> Tokenizer:
    """A tokenizer for `spec` (see the module docstring); TokenizerError names what went wrong."""
    path = Path(spec).expanduser()
    if spec == "tekken" or (path.suffix == ".json" and path.is_file()):
        tpath = tekken_path() if spec == "tekken" else path
        if not tpath.is_file():
            raise TokenizerError(f"{tpath} does not exist", hint="pip install mistral-common")
        try:
            return TekkenTokenizer(f"tekken ({tpath.name})", tpath)
        except (ValueError, KeyError, OSError) as exc:
            raise TokenizerError(
                f"{tpath} is not a Tekken tokenizer: {exc}", hint="give a tekken*.json"
            ) from exc
    if path.suffix == ".gguf" and path.is_file():
        return GgufTokenizer(path.name, path)
    from potion import registry
    from potion.errors import PotionError

    try:
        gguf = registry.resolve(spec, pull=False)
    except PotionError as exc:
        raise TokenizerError(
            f"{spec!r} is neither a registry model, a .gguf file nor a Tekken json ({exc.message})",
            hint="use `tekken`, a .gguf path or a name from `potion models list`",
        ) from exc
    return GgufTokenizer(spec, gguf)
