"""Positions in UTF-16 / UTF-8 / UTF-32 units, scope at a cursor, incremental documents."""

from __future__ import annotations

import random

import pytest

from potion.elixir import Document, LineIndex, analyze, scope_at

# "é" is 2 bytes / 1 UTF-16 unit; "😀" is 4 bytes / 2 UTF-16 units / 1 code point.
TEXT = 'defmodule Emoji do # ünïcode 😀\n  def smile(x), do: "😀é" <> x\n  def after_it, do: :ok\nend\n'


def test_offsets_round_trip_in_every_encoding() -> None:
    idx = LineIndex(TEXT.encode())
    line = TEXT.split("\n")[1]
    col_cp = line.index("<>")
    col_u16 = col_cp + 1  # the emoji is two UTF-16 units
    col_u8 = len(line[:col_cp].encode())
    start = TEXT.encode().index(b"<>")
    assert idx.offset(1, col_u16, "utf-16") == start
    assert idx.offset(1, col_cp, "utf-32") == start
    assert idx.offset(1, col_u8, "utf-8") == start
    assert idx.position(start, "utf-16") == (1, col_u16)
    assert idx.position(start, "utf-32") == (1, col_cp)
    assert idx.position(start, "utf-8") == (1, col_u8)
    # inside the emoji's bytes -> its start; past the line -> clamped to the line end
    emoji = TEXT.encode().index("😀".encode(), len(TEXT.split("\n")[0].encode()) + 1)
    assert idx.position(emoji + 2, "utf-16") == idx.position(emoji, "utf-16")
    assert idx.offset(1, 999) == TEXT.encode().index(b"\n", emoji)
    assert idx.offset(99, 0) == len(TEXT.encode())
    with pytest.raises(ValueError, match="utf-16"):
        idx.offset(0, 0, "latin-1")


def test_crlf_and_invalid_bytes_positions() -> None:
    data = b"ab\r\n\xffcd\n"
    idx = LineIndex(data)
    assert idx.line_bytes(0) == b"ab" and idx.offset(0, 10) == 2
    assert idx.position(data.index(b"c"), "utf-16") == (1, 1)  # the bad byte counts as one unit
    assert idx.offset(1, 1, "utf-32") == data.index(b"c")


def test_scope_at_with_non_ascii_text() -> None:
    a = analyze(TEXT)
    line = TEXT.split("\n")[1]
    col = line.index("<>") + 1
    scope = scope_at(a, 1, col)  # utf-16 default
    assert scope.module_name == "Emoji" and scope.function.name == "smile"
    assert scope_at(TEXT, 1, line.index("<>"), encoding="utf-32").function.name == "smile"
    assert scope_at(a, 2, 5).function.name == "after_it"
    assert scope_at(a, 3, 1).function is None and scope_at(a, 3, 1).module_name == "Emoji"
    assert scope_at(a, 3, 3).module is None  # right after the final `end`
    assert scope_at(a, 4, 0).module is None  # after the final `end`


def test_scope_in_nested_modules() -> None:
    src = "defmodule A do\n  defmodule B do\n    def f, do: 1\n  end\n  def g, do: 2\nend\n"
    s = scope_at(src, 2, 8)
    assert [m.name for m in s.modules] == ["A", "A.B"] and s.module_name == "A.B" and s.function.name == "f"
    assert scope_at(src, 4, 8).module_name == "A"


def _shape(analysis) -> list:
    return [
        (
            m.name,
            m.start_byte,
            m.end_byte,
            [(f.name, f.arities, [(c.start_byte, c.end_byte) for c in f.clauses]) for f in m.functions],
        )
        for m in analysis.modules
    ]


def test_document_edit_matches_a_fresh_parse() -> None:
    doc = Document(TEXT)
    line = TEXT.split("\n")[1]
    col = line.index("<>") + 1  # utf-16
    a = doc.edit(1, col, 1, col + 2, '<> "🎉" <>')
    expected = TEXT.replace('"😀é" <>', '"😀é" <> "🎉" <>')
    assert doc.text == expected and _shape(a) == _shape(analyze(expected))
    a = doc.edit(2, 0, 2, 0, "  def added(a, b \\\\ 1), do: a\n")
    assert doc.analysis.module("Emoji").function("added").arities == range(1, 3)
    a = doc.edit(1, 0, 3, 0, "")  # delete two lines
    assert [f.name for f in a.module("Emoji").functions] == ["after_it"]
    assert doc.scope_at(1, 8).function.name == "after_it"


def test_random_edits_stay_consistent_with_full_parses() -> None:
    rng = random.Random(7)
    text = "defmodule R do\n" + "".join(f"  def f{i}(x), do: x + {i}\n" for i in range(30)) + "end\n"
    doc = Document(text)
    pieces = ["\n", "end", "def z(y), do: y\n", "é😀", " do\n", "(", ")", "  "]
    for _ in range(40):
        data = doc.text
        lines = data.split("\n")
        sl = rng.randrange(len(lines))
        el = min(len(lines) - 1, sl + rng.randrange(2))
        sc = rng.randrange(len(lines[sl].encode("utf-16-le")) // 2 + 1)
        ec = rng.randrange(len(lines[el].encode("utf-16-le")) // 2 + 1) if el != sl else sc
        doc.edit(sl, sc, el, ec, rng.choice(pieces))
        assert _shape(doc.analysis) == _shape(analyze(doc.data))
