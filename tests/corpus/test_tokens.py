"""The Elixir tokenization report: constructs found by tree-sitter, tokens attributed by byte spans."""

from __future__ import annotations

import json

import pytest

from corpus.errors import TokenizerError
from corpus.tokenizers import load_tokenizer
from corpus.tokens import constructs, markdown, measure
from potion.elixir.analysis import parse

SRC = '''defmodule Demo do
  @moduledoc """
  Heredoc docs.
  """
  @spec run(list()) :: {:ok, list()}
  def run(items) do
    with {:ok, xs} <- {:ok, items} do
      café = xs |> Enum.map(&(&1 * 2))
      {:ok, café ++ ~w(a b)}
    end
  end
end
'''


class ByteTokenizer:
    """One token per byte, except `|>` and `do` are single tokens: a tokenizer we can reason about."""

    name = "bytes"

    def __init__(self) -> None:
        self.pieces: list[bytes] = [bytes([i]) for i in range(256)] + [b"|>", b"do"]

    def encode(self, text: str) -> list[int]:
        data, out, i = text.encode(), [], 0
        while i < len(data):
            if data[i : i + 2] == b"|>":
                out.append(256)
                i += 2
            elif data[i : i + 2] == b"do":
                out.append(257)
                i += 2
            else:
                out.append(data[i])
                i += 1
        return out

    def piece(self, token: int) -> bytes:
        return self.pieces[token]


def test_constructs_found():
    data = SRC.encode()
    found = {(kind, data[a:b].decode()) for kind, a, b in constructs(data, parse(data).root_node)}
    assert ("pipe |>", "|>") in found and ("arrow <-", "<-") in found and ("match =", "=") in found
    assert ("@attribute", "@spec") in found and ("@attribute", "@moduledoc") in found
    assert ("atom", ":ok") in found and ("sigil", "~w(a b)") in found
    assert ("unicode identifier", "café") in found
    assert any(kind == "heredoc" and text.startswith('"""') for kind, text in found)


def test_measure_attributes_tokens_by_span():
    report = measure(ByteTokenizer(), [SRC])
    rows = {r["construct"]: r for r in report["constructs"]}
    assert rows["pipe |>"]["tokens_per_instance"] == 1.0  # merged into one token
    assert rows["atom"]["tokens_per_char"] == 1.0  # one token per byte
    # `café` is 5 bytes, 4 characters: 5 tokens
    assert rows["unicode identifier"]["tokens"] == 10 and rows["unicode identifier"]["chars"] == 8
    assert report["tokens"] == len(ByteTokenizer().encode(SRC)) and report["chars"] == len(SRC)
    assert report["most_fragmented"][0] in ("unicode identifier", "atom", "@attribute", "sigil")
    md = markdown(report)
    assert "| pipe \\|> |" in md and "tokens/char" in md


def test_unknown_tokenizer_is_a_clear_error(potion_home, tmp_path):
    with pytest.raises(TokenizerError, match="neither a registry model"):
        load_tokenizer("no-such-model")
    bad = tmp_path / "tekken_bad.json"
    bad.write_text(json.dumps({"nope": 1}))
    with pytest.raises(TokenizerError, match="not a Tekken tokenizer"):
        load_tokenizer(str(bad))


@pytest.mark.slow
def test_tekken_report_on_a_built_corpus(tmp_path, capsys):
    from pathlib import Path

    import yaml

    from potion.cli import main

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "mix_sample"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "sources": [{"kind": "dir", "path": str(fixture)}],
                "decontaminate": {"suites": False},
                "workers": 1,
            }
        )
    )
    out = tmp_path / "corpus"
    assert main(["corpus", "build", "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["corpus", "tokens", "--model", "tekken", "--json", str(out)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["tokenizer"].startswith("tekken") and report["files"] >= 5
    assert 0.1 < report["tokens_per_char"] < 1.0
    assert {r["construct"] for r in report["constructs"]} >= {
        "atom",
        "pipe |>",
        "@attribute",
        "heredoc",
        "sigil",
    }
    (md,) = out.glob("tokens-tekken*.md")
    assert "tokens/char" in md.read_text()


@pytest.mark.e2e
def test_default_model_gguf_vocabulary():
    pytest.importorskip("llama_cpp")
    tok = load_tokenizer("qwen2.5-coder-0.5b")
    report = measure(tok, [SRC])
    assert report["files"] == 1 and report["skipped"] == 0  # pieces spell the file exactly
    assert {r["construct"] for r in report["constructs"]} >= {"atom", "pipe |>", "unicode identifier"}


@pytest.mark.e2e
def test_gguf_pieces_of_long_tokens_spell_the_text():
    pytest.importorskip("llama_cpp")
    tok = load_tokenizer("qwen2.5-coder-0.5b")
    text = "x =" + " " * 80 + "1  # table\n" + "\t" * 12 + "end"
    assert b"".join(tok.piece(i) for i in tok.encode(text)) == text.encode()
