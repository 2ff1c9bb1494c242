"""A reader for Erlang term text (`file:consult/1` format, as in Hex's `metadata.config`): tuples, lists,
binaries, strings, atoms, numbers and maps, parsed as data. Nothing is ever evaluated: anything else
(funs, operators, variables) is a syntax error.

Binaries become `str`, tuples `tuple`, lists `list`, maps `dict`, atoms `Atom` (a str subclass).
"""

from __future__ import annotations

import re

from corpus.errors import HexTarballError


class Atom(str):
    """An Erlang atom (`true`, `'quoted atom'`)."""


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|%[^\n]*)
  | (?P<bin><<\s*"(?:[^"\\]|\\.)*"\s*(?:/utf8\s*)?>>|<<\s*>>)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<qatom>'(?:[^'\\]|\\.)*')
  | (?P<num>-?\d+\.\d+(?:[eE][-+]?\d+)?|-?\d+\#[0-9a-zA-Z]+|-?\d+)
  | (?P<atom>[a-z][A-Za-z0-9_@]*)
  | (?P<punct>\#\{|=>|[{}\[\],.|])
    """,
    re.X | re.S,
)
_ESC = {"n": "\n", "t": "\t", "r": "\r", "s": " ", "\\": "\\", '"': '"', "'": "'", "e": "\x1b", "0": "\0"}


def _unescape(s: str) -> str:
    return re.sub(
        r"\\x\{([0-9a-fA-F]+)\}|\\x([0-9a-fA-F]{2})|\\(.)",
        lambda m: (
            chr(int(m.group(1) or m.group(2), 16))
            if (m.group(1) or m.group(2))
            else _ESC.get(m.group(3), m.group(3))
        ),
        s,
    )


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise HexTarballError(
                f"metadata.config: unexpected {text[pos : pos + 20]!r} at offset {pos}",
                hint="only Erlang data terms are allowed (nothing is evaluated)",
            )
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup or "", m.group()))
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.toks = tokens
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise HexTarballError(
                f"metadata.config: expected {value or 'a term'}, found {tok[1] if tok else 'end of file'}",
                hint="the tarball's metadata is malformed",
            )
        self.i += 1
        return tok

    def seq(self, close: str) -> list:
        items: list = []
        if self.peek() and self.peek()[1] == close:
            self.take(close)
            return items
        while True:
            items.append(self.term())
            sep = self.take()[1]
            if sep == close:
                return items
            if sep != ",":
                raise HexTarballError(
                    f"metadata.config: expected , or {close}, found {sep}", hint="malformed"
                )

    def term(self):  # noqa: ANN201 - any Erlang term
        kind, text = self.take()
        if kind == "bin":
            inner = re.match(r'<<\s*"(.*)"', text, re.S)
            return _unescape(inner.group(1)) if inner else ""
        if kind == "str":
            return _unescape(text[1:-1])
        if kind == "qatom":
            return Atom(_unescape(text[1:-1]))
        if kind == "atom":
            return Atom(text)
        if kind == "num":
            if "#" in text:
                base, digits = text.split("#")
                return int(digits, int(base.lstrip("-"))) * (-1 if text.startswith("-") else 1)
            return float(text) if "." in text else int(text)
        if text == "{":
            return tuple(self.seq("}"))
        if text == "[":
            return self.seq("]")
        if text == "#{":
            pairs: dict = {}
            if self.peek() and self.peek()[1] == "}":
                self.take("}")
                return pairs
            while True:
                key = self.term()
                self.take("=>")
                pairs[_hashable(key)] = self.term()
                sep = self.take()[1]
                if sep == "}":
                    return pairs
                if sep != ",":
                    raise HexTarballError("metadata.config: malformed map", hint="malformed")
        raise HexTarballError(f"metadata.config: unexpected {text!r}", hint="only data terms are allowed")


def _hashable(value):  # noqa: ANN001, ANN202
    return tuple(_hashable(v) for v in value) if isinstance(value, list | tuple) else value


def consult(text: str) -> list:
    """Every `Term.` in the text, like Erlang's `file:consult/1`."""
    parser = _Parser(_tokens(text))
    terms = []
    while parser.peek() is not None:
        terms.append(parser.term())
        parser.take(".")
    return terms
