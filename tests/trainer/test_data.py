"""Training data: packing with document boundaries, FIM in the family's own format, chat masks, replay."""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from trainer_fixtures import conversation, elixir_module
from transformers import AutoModelForCausalLM, AutoTokenizer

from corpus.schema import split_path
from potion.prompts import TEMPLATES
from trainer import data
from trainer.errors import DataError


@pytest.fixture(scope="module")
def tekken(tiny_models):
    return AutoTokenizer.from_pretrained(tiny_models("mistral"))


def test_pack_keeps_documents_apart():
    docs = [[1, 2, 3], [4, 5, 6, 7, 8], [9, 10]]
    rows = list(data.pack(docs, 4))
    assert [r["input_ids"] for r in rows] == [[1, 2, 3, 4], [5, 6, 7, 8]]  # the partial [9, 10] is dropped
    assert rows[0]["position_ids"] == [0, 1, 2, 0]  # positions restart at the document boundary
    assert rows[0]["labels"] == [-100, 2, 3, -100]  # the first token of a document is no target
    assert rows[1]["position_ids"] == [0, 1, 2, 3] and rows[1]["labels"][0] == -100


@pytest.mark.parametrize("attn", ["sdpa", "eager"])  # flash_attention_2 needs a GPU
def test_packed_documents_do_not_attend_to_each_other(tiny_models, attn):
    """The same tokens give the same logits alone and packed behind another document."""
    model = AutoModelForCausalLM.from_pretrained(tiny_models("mistral"), attn_implementation=attn).eval()
    a, b = [5, 6, 7, 8, 9], [20, 21, 22, 23]
    row = next(data.pack([a, b], len(a) + len(b)))
    with torch.no_grad():
        packed = model(
            input_ids=torch.tensor([row["input_ids"]]),
            position_ids=torch.tensor([row["position_ids"]]),
            use_cache=False,
        ).logits[0, len(a) :]
        alone = model(input_ids=torch.tensor([b])).logits[0]
        leaky = model(input_ids=torch.tensor([a + b])).logits[0, len(a) :]
    assert torch.allclose(packed, alone, atol=1e-5)
    assert not torch.allclose(leaky, alone, atol=1e-3)


def test_pack_whole_never_splits_a_document():
    rows = data.pack_whole([[1, 2, 3], [4, 5, 6, 7, 8], [9, 10], [11] * 12], 8)
    assert [r["input_ids"] for r in rows] == [[1, 2, 3, 4, 5, 6, 7, 8], [9, 10], [11] * 8]
    assert data.token_stats(rows)["tokens"] == 18  # a short row stays short: no padding counted
    batch = data.PadCollator(pad_id=0)(rows[:2])  # the collator pads a batch to its longest row
    assert batch["input_ids"][1].tolist() == [9, 10, 0, 0, 0, 0, 0, 0]
    assert batch["labels"][1].tolist() == [-100, 10] + [-100] * 6  # padding is no target
    assert batch["position_ids"][1].tolist() == [0, 1, 0, 1, 2, 3, 4, 5]  # and a document of its own
    assert data.PadCollator(pad_id=0)(rows[1:2])["input_ids"].shape == (1, 2)  # short alone: no padding


def test_fim_pieces_fit_a_row_and_keep_every_character(tekken):
    text = "\n".join(elixir_module(i) for i in range(12))
    pieces = data.fim_pieces(text, tekken, 64)
    assert len(pieces) > 3 and "".join(pieces) == text
    assert all(p.endswith("\n") for p in pieces[:-1])  # cut at line ends
    assert all(len(tekken(p, add_special_tokens=False).input_ids) <= 64 + 2 for p in pieces)
    assert data.fim_pieces(elixir_module(1), tekken, 4096) == [elixir_module(1)]
    line = "x = " + "a + " * 300 + "1\n"  # one line longer than the budget: cut between tokens
    cut = data.fim_pieces(line, tekken, 32)
    assert len(cut) > 5 and "".join(cut) == line


def test_a_fim_sample_never_straddles_two_rows(tiny_models):
    """Every FIM sample lies whole in one row (its prefix, suffix and middle, then EOS), every character of
    every file is in exactly one sample, and rows are at most seq_len long, without padding."""
    qwen = AutoTokenizer.from_pretrained(tiny_models("qwen2"))
    texts = ["\n".join(elixir_module(i + k) for i in range(n)) for k, n in enumerate((1, 9, 3, 14))]
    spec = data.FimSpec(data.fim_template_for(qwen), rate=1.0, spm_rate=0.0)
    seq_len = 96
    rows = data.stage1_rows(texts, qwen, seq_len, spec, seed=0)
    samples = []
    for row in rows:
        assert 0 < len(row["input_ids"]) <= seq_len and qwen.pad_token_id not in row["input_ids"]
        starts = [i for i, p in enumerate(row["position_ids"]) if p == 0] + [len(row["input_ids"])]
        for a, b in zip(starts, starts[1:], strict=False):
            samples.append(qwen.decode(row["input_ids"][a:b]))
    reassembled = []
    for doc in samples:
        assert doc.startswith("<|fim_prefix|>") and doc.endswith(qwen.eos_token), doc
        prefix, rest = doc[len("<|fim_prefix|>") :].split("<|fim_suffix|>")
        suffix, middle = rest.split("<|fim_middle|>")
        reassembled.append(prefix + middle.removesuffix(qwen.eos_token) + suffix)
    pieces = [p for t in texts for p in data.fim_pieces(t, qwen, seq_len - data.FIM_ROOM)]
    assert sorted(reassembled) == sorted(pieces) and len(pieces) > len(texts)


def test_fim_uses_the_families_templates(tekken, tiny_models):
    text = elixir_module(5)
    rng = random.Random(0)
    spec = data.FimSpec(data.fim_template_for(tekken), rate=1.0, spm_rate=0.0, granularity="line")
    assert spec.template == TEMPLATES["codestral"]
    out = data.fim_transform(text, spec, rng, tekken)
    assert out.startswith("[PREFIX]") and "[SUFFIX]" in out
    prefix = out[len("[PREFIX]") : out.index("[SUFFIX]")]
    rest = out[out.index("[SUFFIX]") + len("[SUFFIX]") :]
    assert prefix == "" or prefix.endswith("\n")  # cut at a line boundary
    # suffix then middle: prefix + middle + suffix is the file again
    spm = data.fim_transform(text, data.FimSpec(spec.template, 1.0, 1.0), random.Random(1), tekken)
    assert spm.startswith("[SUFFIX]") and "[PREFIX]" in spm
    suffix = spm[len("[SUFFIX]") : spm.index("[PREFIX]")]
    prefix_and_middle = spm[spm.index("[PREFIX]") + len("[PREFIX]") :]
    assert prefix_and_middle + suffix == text
    assert rest  # PSM carries suffix and middle after the marker
    qwen = AutoTokenizer.from_pretrained(tiny_models("qwen2"))
    q = data.fim_transform(text, data.FimSpec(data.fim_template_for(qwen), 1.0, 0.0), random.Random(2), qwen)
    assert q.startswith("<|fim_prefix|>") and "<|fim_suffix|>" in q and "<|fim_middle|>" in q
    ids = qwen(q, add_special_tokens=False).input_ids
    assert qwen.convert_tokens_to_ids("<|fim_middle|>") in ids  # one special token, not text


def test_fim_rate_and_token_granularity(tekken):
    spec = data.FimSpec(data.fim_template_for(tekken), rate=0.0)
    assert data.fim_transform("x = 1\n", spec, random.Random(0), tekken) == "x = 1\n"
    text = "defmodule A do\n  def f(x), do: x\nend\n"
    tok = data.FimSpec(spec.template, rate=1.0, spm_rate=0.0, granularity="token")
    cuts = set()
    for seed in range(20):
        out = data.fim_transform(text, tok, random.Random(seed), tekken)
        cuts.add(out[len("[PREFIX]") : out.index("[SUFFIX]")])
    offsets = {
        s for s, _ in tekken(text, add_special_tokens=False, return_offsets_mapping=True).offset_mapping
    }
    assert all(text.startswith(c) and (len(c) in offsets or len(c) == len(text)) for c in cuts)
    assert any(not c.endswith("\n") and c for c in cuts)  # token cuts fall inside lines too


def test_chat_rows_train_on_assistant_tokens_only(tekken, tiny_models):
    for tokenizer in (tekken, AutoTokenizer.from_pretrained(tiny_models("qwen2"))):
        msgs = conversation(3)  # system + user + assistant
        row = data.chat_row(msgs, tokenizer)
        target = [t for t, lab in zip(row["input_ids"], row["labels"], strict=True) if lab != -100]
        decoded = tokenizer.decode(target)
        assert decoded.startswith(msgs[-1]["content"])
        assert decoded[len(msgs[-1]["content"]) :].strip() in (tokenizer.eos_token, "<|im_end|>")
        assert "Write a function" not in decoded and "idiomatic" not in decoded


def test_stage2_too_long_is_an_error_or_dropped(tekken):
    convs = [conversation(1), conversation(2) + [{"role": "user", "content": "x " * 200}]]
    convs[1].append({"role": "assistant", "content": "ok"})
    with pytest.raises(DataError, match="conversation 1 has .* tokens, more than seq_len=64") as info:
        data.stage2_rows(convs, tekken, 64)
    assert "long_sequences=drop" in info.value.user_message()
    assert len(data.stage2_rows(convs, tekken, 64, long_sequences="drop")) == 1


def test_replay_fraction():
    rows = [{"id": i} for i in range(90)]
    replay = [{"id": -i} for i in range(1, 50)]
    mixed = data.with_replay(rows, replay, 0.1, seed=0)
    assert len(mixed) == 100 and sum(r["id"] < 0 for r in mixed) == 10
    assert data.with_replay(rows, replay, 0.0, seed=0) == rows


def test_wrong_columns_and_missing_data(tmp_path):
    path = split_path(tmp_path, "stage1", "train")
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{"content": "x", "path": "a.ex"}]), path)
    with pytest.raises(DataError, match="missing column\\(s\\) text, source, license"):
        data.read_split(tmp_path, "stage1", "train")
    with pytest.raises(DataError, match="no stage2 train data"):
        data.read_split(tmp_path, "stage2", "train")


def test_too_little_data(tekken):
    with pytest.raises(DataError, match="less than one row of seq_len=4096"):
        data.stage1_rows(["x = 1"], tekken, 4096, data.FimSpec(None), seed=0)
    # a held-out split too small for one row (one project alone has none) is no rows, not an error
    assert data.stage1_rows(["x = 1"], tekken, 4096, data.FimSpec(None), seed=0, required=False) == []
    assert data.stage2_rows([], tekken, 64, required=False) == []
    with pytest.raises(DataError, match="no stage-2 conversation"):
        data.stage2_rows([], tekken, 64)


def test_collator_pads_without_joining_documents():
    batch = data.PadCollator(pad_id=0)(
        [
            {"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "position_ids": [0, 1, 2]},
            {"input_ids": [8], "labels": [-100], "position_ids": [0]},
        ]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist()[1] == [-100, -100, -100]
    assert batch["position_ids"].tolist()[1] == [0, 0, 1]  # the padding is a separate "document"


def test_general_replay_mixes_the_train_half_of_the_standard_library(tekken, corpus_dir, tmp_path):
    from corpus import general
    from trainer.config import TrainConfig
    from trainer.run import prepare_data

    stdlib = tmp_path / "stdlib"
    for i in range(8):
        (stdlib / f"m{i}").mkdir(parents=True)
        (stdlib / f"m{i}" / "mod.py").write_text(f"def function_{i}(value):\n    return value + {i}\n" * 60)
    cfg = dict(model="tiny:mistral", data=str(corpus_dir), seq_len=64, stage1_steps=1, stage2_steps=0)
    plain = prepare_data(TrainConfig(**cfg), tekken)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(general, "stdlib_root", lambda: stdlib)
        mixed = prepare_data(TrainConfig(**cfg, general_replay_fraction=0.2), tekken)
    n = len(plain.stage1_train)
    assert len(mixed.general_replay) == round(n * 0.2 / 0.8) > 0
    assert len(mixed.stage1_train) == n + len(mixed.general_replay)
    halves = {
        h: {rel.split("/")[0][1:] for rel, _ in general.general_code(h, stdlib)} for h in general.HALVES
    }
    for row in mixed.general_replay:
        text = tekken.decode(row["input_ids"])
        assert "defmodule" not in text and any(f"function_{i}(" in text for i in halves["train"])
        assert not any(f"function_{i}(" in text for i in halves["eval"])  # the forgetting check's half
    assert mixed.stats()["general_replay"]["rows"] == len(mixed.general_replay)
