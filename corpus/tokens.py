"""Elixir-aware tokenization report: how a tokenizer splits Elixir, overall and per construct.

Each file is tokenized whole (so merges with neighbouring spaces count as they would in training); a
construct's cost is the number of tokens that overlap its bytes, per character. Constructs are found by
tree-sitter: atoms, `|>`, `<-`, `=` in matches, `@attrs`, sigils, heredocs, unicode identifiers, and
aliases, keywords and comments for comparison.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from tree_sitter import Node

from corpus.tokenizers import Tokenizer
from potion.elixir.analysis import parse

CONSTRUCTS = (
    "atom",
    "pipe |>",
    "arrow <-",
    "match =",
    "@attribute",
    "sigil",
    "heredoc",
    "unicode identifier",
    "alias",
    "keyword do/end/fn",
    "comment",
)
_OPERATORS = {"|>": "pipe |>", "<-": "arrow <-", "=": "match ="}


def constructs(data: bytes, root: Node) -> Iterator[tuple[str, int, int]]:
    """(construct, start byte, end byte) for every construct in a parsed file."""
    stack = [root]
    while stack:
        node = stack.pop()
        t = node.type
        if t in ("atom", "quoted_atom"):
            yield "atom", node.start_byte, node.end_byte
        elif t == "binary_operator":
            op = node.child_by_field_name("operator")
            if op is not None and op.type in _OPERATORS:
                yield _OPERATORS[op.type], op.start_byte, op.end_byte
        elif t == "unary_operator":
            op = node.child_by_field_name("operator")
            operand = node.child_by_field_name("operand")
            if op is not None and op.type == "@" and operand is not None:
                name = operand.child_by_field_name("target") if operand.type == "call" else operand
                if name is not None and name.type == "identifier":
                    yield "@attribute", op.start_byte, name.end_byte
        elif t == "sigil":
            yield "sigil", node.start_byte, node.end_byte
            continue
        elif t == "string" and data[node.start_byte : node.start_byte + 3] == b'"""':
            yield "heredoc", node.start_byte, node.end_byte
            continue
        elif t == "identifier" and not data[node.start_byte : node.end_byte].isascii():
            yield "unicode identifier", node.start_byte, node.end_byte
        elif t == "alias":
            yield "alias", node.start_byte, node.end_byte
        elif t in ("do", "end", "fn"):
            yield "keyword do/end/fn", node.start_byte, node.end_byte
        elif t == "comment":
            yield "comment", node.start_byte, node.end_byte
        stack.extend(reversed(node.children))


@dataclass
class ConstructStats:
    count: int = 0
    chars: int = 0
    tokens: int = 0
    examples: Counter[str] = field(default_factory=Counter)
    example_tokens: dict[str, int] = field(default_factory=dict)

    @property
    def tokens_per_char(self) -> float:
        return self.tokens / self.chars if self.chars else 0.0


def _offsets(tok: Tokenizer, ids: list[int]) -> list[int]:
    """Byte offset where each token starts, and the end of the last."""
    out, pos = [], 0
    for i in ids:
        out.append(pos)
        pos += len(tok.piece(i))
    return out + [pos]


def measure(tok: Tokenizer, texts: Iterable[str]) -> dict:
    """The report as a dict: overall tokens/char and per-construct stats with the worst examples."""
    per: dict[str, ConstructStats] = defaultdict(ConstructStats)
    total_chars = total_tokens = files = skipped = 0
    for text in texts:
        data = text.encode("utf-8")
        ids = tok.encode(text)
        starts = _offsets(tok, ids)
        if starts[-1] != len(data):
            skipped += 1  # the tokenizer rewrote the text (normalisation): spans would not line up
            continue
        files += 1
        total_chars += len(text)
        total_tokens += len(ids)
        for kind, a, b in constructs(data, parse(data).root_node):
            # tokens overlapping [a, b): those starting before b, minus those ending at or before a
            n = bisect.bisect_left(starts, b, hi=len(ids)) - bisect.bisect_right(starts, a, hi=len(ids)) + 1
            snippet = data[a:b].decode("utf-8", "replace")
            s = per[kind]
            s.count += 1
            s.chars += len(snippet)
            s.tokens += n
            if len(snippet) <= 60:
                s.examples[snippet] += 1
                s.example_tokens[snippet] = n
    rows = []
    for kind in CONSTRUCTS:
        s = per.get(kind)
        if not s or not s.count:
            continue
        # fragmentation = tokens beyond the first, per character: a 2-char atom in 2 tokens is less
        # broken up than a 15-char attribute in 9
        worst = sorted(
            s.examples, key=lambda x: (-(s.example_tokens[x] - 1) / max(1, len(x)), -s.examples[x], x)
        )
        common = [x for x in worst if s.examples[x] >= 2] or worst
        rows.append(
            {
                "construct": kind,
                "count": s.count,
                "chars": s.chars,
                "tokens": s.tokens,
                "tokens_per_char": round(s.tokens_per_char, 4),
                "tokens_per_instance": round(s.tokens / s.count, 3),
                "worst": [
                    {"text": x, "tokens": s.example_tokens[x], "seen": s.examples[x]} for x in common[:3]
                ],
            }
        )
    return {
        "tokenizer": tok.name,
        "files": files,
        "skipped": skipped,
        "chars": total_chars,
        "tokens": total_tokens,
        "tokens_per_char": round(total_tokens / total_chars, 4) if total_chars else 0.0,
        "constructs": rows,
        "most_fragmented": [r["construct"] for r in sorted(rows, key=lambda r: -r["tokens_per_char"])][:5],
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(report: dict) -> str:
    """The report as a Markdown table (constructs most fragmented first)."""
    lines = [
        f"# Elixir tokenization: {report['tokenizer']}",
        "",
        f"{report['files']} files, {report['chars']:,} characters, {report['tokens']:,} tokens: "
        f"**{report['tokens_per_char']:.3f} tokens/char** overall.",
        "",
        "| construct | count | tokens/char | tokens/instance | most fragmented examples |",
        "|---|---:|---:|---:|---|",
    ]
    for r in sorted(report["constructs"], key=lambda r: -r["tokens_per_char"]):
        ex = ", ".join(f"`{_cell(w['text'])}` ({w['tokens']})" for w in r["worst"])
        cost = f"{r['tokens_per_char']:.3f} | {r['tokens_per_instance']:.2f}"
        lines.append(f"| {_cell(r['construct'])} | {r['count']} | {cost} | {ex} |")
    return "\n".join(lines) + "\n"
