"""Training data from a corpus directory (corpus.schema): FIM, packing, chat masking, replay.

Stage 1 rows are files. With FIM on, each file is cut at line ends into pieces that fit a row, and each
piece becomes, with probability `fim_rate`, a fill-in-the-middle sample in the model family's own format
(`potion.prompts.TEMPLATES`, the strings the language server sends), cut at line or token boundaries, PSM or
SPM (context-level FIM, as in Bavarian et al. 2022: a sample never straddles two rows). Documents end with
EOS and are packed into rows of exactly `seq_len` tokens.
Position ids restart at every document: transformers turns that into a block-diagonal causal mask (sdpa,
eager and flash attention alike), so no token attends across documents, and the first token of a document
is not a target of the previous one.

Stage 2 rows are conversations rendered with the model's chat template; only assistant tokens (and the
end-of-turn token after them) are targets. A fraction of packed stage-1 rows is mixed in (replay).
"""

from __future__ import annotations

import bisect
import dataclasses
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpus.schema import SchemaError, check_columns, check_messages, split_path
from potion.prompts import TEMPLATES, FimTemplate, detect_family, render_fim
from trainer.errors import DataError

IGNORE = -100


@dataclass(frozen=True)
class FimSpec:
    """How to turn a file into a FIM sample."""

    template: FimTemplate | None
    rate: float = 0.5
    spm_rate: float = 0.5
    granularity: str = "line"


def fim_template_for(tokenizer: Any) -> FimTemplate | None:
    """The FIM template of the tokenizer's family (None when its vocabulary has no FIM tokens)."""
    return TEMPLATES.get(detect_family(tokenizer.get_vocab()))


def read_split(root: Path | str, stage: str, split: str, *, limit: int | None = None) -> list[dict]:
    """Rows of one parquet file of the corpus, checked against corpus.schema."""
    import pyarrow.parquet as pq

    path = split_path(root, stage, split)
    if not path.is_file():
        raise DataError(
            f"no {stage} {split} data at {path}",
            hint="build the corpus with `potion corpus build` or point `data` at a corpus directory",
        )
    table = pq.read_table(path)
    try:
        check_columns(table.column_names, stage, where=str(path))
    except SchemaError as exc:
        raise DataError(str(exc), hint="rebuild the corpus with the current `potion corpus build`") from exc
    rows = table.slice(0, limit).to_pylist() if limit else table.to_pylist()
    if stage == "stage2":
        for i, row in enumerate(rows):
            try:
                check_messages(row["messages"], where=f"{path} row {i}")
            except SchemaError as exc:
                raise DataError(str(exc), hint="fix or drop that row in the corpus") from exc
    return rows


def _cut_points(text: str, rng: random.Random, granularity: str, tokenizer: Any) -> tuple[int, int]:
    """Two character offsets a <= b splitting `text` into prefix | middle | suffix."""
    if granularity == "line":
        bounds = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n" and i + 1 < len(text)] + [len(text)]
    else:
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        bounds = sorted({0, len(text), *(start for start, _ in offsets)})
    a, b = sorted(rng.choice(bounds) for _ in range(2))
    return a, b


def fim_transform(text: str, spec: FimSpec, rng: random.Random, tokenizer: Any) -> str:
    """`text` unchanged, or (with probability spec.rate) rendered as a FIM sample followed by its middle."""
    if spec.template is None or rng.random() >= spec.rate:
        return text
    a, b = _cut_points(text, rng, spec.granularity, tokenizer)
    prefix, middle, suffix = text[:a], text[a:b], text[b:]
    order = "spm" if rng.random() < spec.spm_rate else "psm"
    template = dataclasses.replace(spec.template, order=order)
    return render_fim(template, prefix, suffix) + middle


def pack(docs: Sequence[Sequence[int]], seq_len: int) -> Iterator[dict[str, list[int]]]:
    """Concatenate token lists into rows of exactly `seq_len` tokens (the last partial row is dropped).

    A document longer than the room left continues in the next row. Position ids restart at every document
    (and at every row); the first token of a document is not a target.
    """
    row = _empty_row()
    for doc in docs:
        start = 0
        while start < len(doc):
            take = min(seq_len - len(row["input_ids"]), len(doc) - start)
            _add_document(row, doc[start : start + take])
            start += take
            if len(row["input_ids"]) == seq_len:
                yield row
                row = _empty_row()


def _empty_row() -> dict[str, list[int]]:
    return {"input_ids": [], "labels": [], "position_ids": []}


def _add_document(row: dict[str, list[int]], doc: Sequence[int]) -> None:
    """Append one document to a packed row: its position ids restart, its first token is no target."""
    row["input_ids"].extend(doc)
    row["labels"].extend([IGNORE, *doc[1:]])
    row["position_ids"].extend(range(len(doc)))


def padded(row: dict[str, list[int]], width: int, pad_id: int) -> dict[str, list[int]]:
    """`row` padded to `width`: padding is no target and, its position ids restarting at 0, a document of
    its own that nothing before it attends to."""
    extra = width - len(row["input_ids"])
    return {
        "input_ids": list(row["input_ids"]) + [pad_id] * extra,
        "labels": list(row["labels"]) + [IGNORE] * extra,
        "position_ids": list(row["position_ids"]) + list(range(extra)),
    }


# Room left in a row beside a FIM piece: three FIM markers, the end-of-sequence token, and tokens that a cut
# splits in two.
FIM_ROOM = 8


def fim_pieces(text: str, tokenizer: Any, budget: int) -> list[str]:
    """`text` cut at line ends into consecutive pieces of at most about `budget` tokens (a line longer than
    the budget is cut between tokens). Context-level FIM: each piece is transformed on its own and packed
    whole, so a sample's prefix, suffix and middle always share a row. Transformed whole, a file longer
    than a row would be cut by packing into rows that hold a prefix without its middle, or a middle
    without the prefix and suffix it completes."""
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    starts = [s for s, _ in offsets]
    if len(starts) <= budget:
        return [text]
    pieces = []
    lo = 0
    while True:
        first = bisect.bisect_left(starts, lo)
        if len(starts) - first <= budget:
            pieces.append(text[lo:])
            return pieces
        limit = starts[first + budget]
        cut = text.rfind("\n", lo, limit) + 1
        if cut <= lo:  # one line longer than the budget
            cut = limit
        pieces.append(text[lo:cut])
        lo = cut


def pack_whole(
    docs: Sequence[Sequence[int]], seq_len: int, *, open_rows: int = 64
) -> list[dict[str, list[int]]]:
    """Documents of at most `seq_len` tokens placed whole into rows (first fit, in order; longer ones are
    truncated). A row that is not full stays short: `PadCollator` pads a batch to its longest row, so a
    batch of short rows computes no padding and the report's token counts are real tokens."""
    rows: list[dict[str, list[int]]] = []
    room: list[int] = []  # indices of rows that still have room, oldest first
    for doc in docs:
        doc = list(doc[:seq_len])
        if not doc:
            continue
        at = next((i for i in room if len(rows[i]["input_ids"]) + len(doc) <= seq_len), None)
        if at is None:
            rows.append(_empty_row())
            at = len(rows) - 1
            room.append(at)
            if len(room) > open_rows:
                room.pop(0)
        _add_document(rows[at], doc)
        if len(rows[at]["input_ids"]) == seq_len:
            room.remove(at)
    return rows


def stage1_rows(
    texts: Sequence[str], tokenizer: Any, seq_len: int, spec: FimSpec, *, seed: int, required: bool = True
) -> list[dict[str, list[int]]]:
    """Packed stage-1 rows, EOS after every document.

    Without FIM, documents are packed back to back and a long one continues in the next row. With FIM,
    every document is cut into pieces that fit a row (`fim_pieces`), each piece is transformed with a
    seeded RNG (ending with EOS when it was: the model learns where a middle stops), and pieces are packed
    whole (`pack_whole`).

    With `required` (training data), too little text for one row is a DataError; without it (a held-out
    split, which one project alone may not have) the answer is simply no rows.
    """
    rng = random.Random(seed)
    eos = tokenizer.eos_token_id
    fim = spec.template is not None and spec.rate > 0
    docs = []
    for text in texts:
        pieces = fim_pieces(text, tokenizer, seq_len - FIM_ROOM) if fim else [text]
        for i, piece in enumerate(pieces):
            sample = fim_transform(piece, spec, rng, tokenizer)
            ends = sample != piece or i == len(pieces) - 1
            docs.append(tokenizer(sample, add_special_tokens=False)["input_ids"] + ([eos] if ends else []))
    total = sum(len(d) for d in docs)
    if total < seq_len:
        rows = []
    elif fim:
        rows = pack_whole(docs, seq_len)
    else:
        rows = list(pack(docs, seq_len))
    if not rows and required:
        raise DataError(
            f"stage-1 data has {total} tokens, less than one row of seq_len={seq_len}",
            hint="add data or lower seq_len",
        )
    return rows


def padded_rows(texts: Sequence[str], tokenizer: Any, seq_len: int) -> list[dict[str, list[int]]]:
    """One row per document, truncated to seq_len (the unpacked baseline of the packing benchmark)."""
    eos = tokenizer.eos_token_id
    rows = []
    for text in texts:
        ids = (tokenizer(text, add_special_tokens=False)["input_ids"] + [eos])[:seq_len]
        rows.append({"input_ids": ids, "labels": [IGNORE, *ids[1:]], "position_ids": list(range(len(ids)))})
    return rows


def chat_row(messages: list[dict], tokenizer: Any) -> dict[str, list[int]]:
    """A conversation through the chat template; labels only on assistant content + the end-of-turn token.

    The rendered text is tokenized with offsets and each assistant message is located in it in order, so this
    works for templates that move the system prompt around (Mistral) as well as ChatML.
    """
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    spans = []
    cursor = 0
    for m in messages:
        start = text.find(m["content"], cursor) if m["content"] else -1
        if start < 0:
            continue
        cursor = start + len(m["content"])
        if m["role"] == "assistant":
            spans.append((start, cursor))
    labels = [IGNORE] * len(ids)
    for a, b in spans:
        inside = [i for i, (s, e) in enumerate(offsets) if s < b and e > a]
        if not inside:
            continue
        for i in inside:
            labels[i] = ids[i]
        end = inside[-1] + 1
        if end < len(ids):  # the end-of-turn token: the model learns to stop
            labels[end] = ids[end]
    return {"input_ids": ids, "labels": labels, "position_ids": list(range(len(ids)))}


def stage2_rows(
    conversations: Sequence[list[dict]],
    tokenizer: Any,
    seq_len: int,
    *,
    long_sequences: str = "error",
    required: bool = True,
) -> list[dict[str, list[int]]]:
    rows = []
    for i, messages in enumerate(conversations):
        row = chat_row(messages, tokenizer)
        if len(row["input_ids"]) > seq_len:
            if long_sequences == "drop":
                continue
            raise DataError(
                f"stage-2 conversation {i} has {len(row['input_ids'])} tokens, more than seq_len={seq_len}",
                hint="raise seq_len, or set long_sequences=drop to skip such rows",
            )
        rows.append(row)
    if not rows and required:
        raise DataError("no stage-2 conversation fits in seq_len", hint="raise seq_len")
    return rows


def replay_rows(count: int, replay: Sequence[dict], fraction: float, rng: random.Random) -> list[dict]:
    """Rows drawn from `replay` so that, added to `count` rows, they make up `fraction` of the result."""
    if fraction <= 0 or not replay:
        return []
    want = round(count * fraction / (1 - fraction))
    return [replay[rng.randrange(len(replay))] for _ in range(want)]


def with_replay(rows: list[dict], replay: Sequence[dict], fraction: float, *, seed: int) -> list[dict]:
    """`rows` plus enough `replay` rows that they make up `fraction` of the result, shuffled."""
    rng = random.Random(seed)
    picked = replay_rows(len(rows), replay, fraction, rng)
    if not picked:
        return list(rows)
    mixed = list(rows) + picked
    rng.shuffle(mixed)
    return mixed


@dataclass
class PadCollator:
    """Pads rows to the longest of the batch (a packed batch needs none); no attention mask, so the
    position ids tell the model where documents (and the padding) begin."""

    pad_id: int

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        batch = [padded(r, width, self.pad_id) for r in rows]
        return {k: torch.tensor([r[k] for r in batch], dtype=torch.long) for k in batch[0]}


def token_stats(rows: Sequence[dict]) -> dict[str, int]:
    """Tokens and target tokens of a list of rows (for the report)."""
    return {
        "rows": len(rows),
        "tokens": sum(len(r["input_ids"]) for r in rows),
        "target_tokens": sum(sum(1 for x in r["labels"] if x != IGNORE) for r in rows),
    }
