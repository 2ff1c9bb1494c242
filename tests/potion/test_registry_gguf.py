"""The GGUF header reader and checker on tiny hand-made files, and resolve() of local paths."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from potion import registry
from potion.errors import ModelCorrupt, ModelNotFound, PotionError
from potion.gguf_header import check_gguf, context_length, read_metadata

VOCAB = ["<|endoftext|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "defmodule", "Ġdo", "é"]
META = {
    "general.architecture": "qwen2",
    "general.name": "Tiny Qwen",
    "general.alignment": 32,
    "qwen2.context_length": 32768,
    "qwen2.rope.freq_base": 1000000.0,
    "tokenizer.ggml.add_bos_token": False,
    "tokenizer.ggml.tokens": VOCAB,
    "tokenizer.ggml.token_type": [1, 3, 3, 3, 1, 1, 1],
    "tokenizer.chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}",
    "nested": [["a", "b"], ["c"]],
    "big.signed": -5,
}
TENSORS = [("token_embd.weight", [64, 7], 0), ("blk.0.attn_q.weight", [256, 4], 12), ("out", [32, 2], 8)]


def test_read_metadata_reads_every_type(make_gguf):
    path = make_gguf(metadata=META, tensors=TENSORS)
    meta = read_metadata(path)
    assert meta["general.architecture"] == "qwen2"
    assert meta["tokenizer.ggml.tokens"] == VOCAB
    assert meta["tokenizer.ggml.token_type"] == [1, 3, 3, 3, 1, 1, 1]
    assert meta["qwen2.context_length"] == 32768
    assert meta["qwen2.rope.freq_base"] == pytest.approx(1e6)
    assert meta["tokenizer.ggml.add_bos_token"] is False
    assert meta["tokenizer.chat_template"].startswith("{% for m")
    assert meta["nested"] == [["a", "b"], ["c"]]
    assert meta["big.signed"] == -5
    assert list(meta) == list(META)


def test_read_metadata_only_wanted_keys(make_gguf):
    path = make_gguf(metadata=META)
    meta = read_metadata(path, keys={"general.name", "tokenizer.ggml.tokens", "absent.key"})
    assert meta == {"general.name": "Tiny Qwen", "tokenizer.ggml.tokens": VOCAB}


def test_context_length(make_gguf):
    assert context_length(make_gguf(metadata=META)) == 32768
    assert context_length(make_gguf("noctx.gguf", metadata={"general.architecture": "llama"})) is None


def test_big_endian_and_version_2(make_gguf):
    path = make_gguf(metadata=META, tensors=TENSORS, order=">", version=2)
    assert read_metadata(path, keys={"tokenizer.ggml.tokens"})["tokenizer.ggml.tokens"] == VOCAB
    header = check_gguf(path)
    assert (header.version, header.tensor_count, header.kv_count) == (2, 3, len(META))


def test_check_gguf_accepts_a_complete_file(make_gguf):
    path = make_gguf(metadata=META, tensors=TENSORS)
    header = check_gguf(path)
    assert header.tensor_count == 3 and header.kv_count == len(META)
    assert header.data_end <= header.size == path.stat().st_size


def test_check_gguf_missing_directory_and_text(tmp_path):
    with pytest.raises(ModelNotFound, match="no such model file"):
        check_gguf(tmp_path / "nope.gguf")
    with pytest.raises(ModelNotFound, match="is a directory") as info:
        check_gguf(tmp_path)
    assert "pass the path of the .gguf file" in info.value.user_message()
    text = tmp_path / "model.gguf"
    text.write_text("this is not a model, just a long enough text file\n")
    with pytest.raises(ModelCorrupt, match="not a GGUF model"):
        check_gguf(text)
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(ModelCorrupt, match="only 0 bytes"):
        check_gguf(empty)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_check_gguf_unreadable(make_gguf):
    path = make_gguf(metadata=META)
    path.chmod(0)
    with pytest.raises(ModelNotFound, match="permission denied"):
        check_gguf(path)


def test_check_gguf_unsupported_version(make_gguf):
    with pytest.raises(ModelCorrupt, match="GGUF version 1; only versions 2 and 3"):
        check_gguf(make_gguf(metadata=META, version=1))


def test_check_gguf_implausible_counts(tmp_path):
    path = tmp_path / "huge.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 10**12, 3) + b"\0" * 64)
    with pytest.raises(ModelCorrupt, match="damaged GGUF header"):
        check_gguf(path)


def test_truncated_tensor_data_is_caught(make_gguf):
    path = make_gguf(metadata=META, tensors=TENSORS)
    data = path.read_bytes()
    path.write_bytes(data[:-40])
    with pytest.raises(ModelCorrupt, match="truncated: its tensors need"):
        check_gguf(path)
    # The metadata itself is intact, so tools that only read it still can.
    assert read_metadata(path, keys={"general.name"}) == {"general.name": "Tiny Qwen"}


def test_every_truncation_is_a_one_line_model_corrupt(make_gguf):
    full = make_gguf(metadata=META, tensors=TENSORS)
    data, end = full.read_bytes(), check_gguf(full).data_end  # past `end` is only alignment padding
    cut_path = make_gguf("cut.gguf", metadata={})
    for cut in [*range(0, end, 3), end - 1]:
        cut_path.write_bytes(data[:cut])
        with pytest.raises(ModelCorrupt) as info:
            check_gguf(cut_path)
        assert "\n" not in info.value.user_message()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4))
def test_damaged_bytes_never_crash_the_reader(make_gguf, flips):
    data = bytearray(make_gguf(metadata=META, tensors=TENSORS).read_bytes())
    for pos, value in flips:
        data[pos % len(data)] = value
    path = make_gguf("damaged.gguf", metadata={})
    path.write_bytes(bytes(data))
    for probe in (check_gguf, read_metadata):
        try:
            probe(path)
        except PotionError as exc:
            assert "\n" not in exc.user_message()


def test_resolve_local_path(make_gguf, potion_home, tmp_path, monkeypatch):
    path = make_gguf(metadata=META, tensors=TENSORS)
    assert registry.resolve(str(path)) == path.resolve()
    monkeypatch.chdir(tmp_path)
    assert registry.resolve("tiny.gguf") == path.resolve()
    with pytest.raises(ModelNotFound, match="no model named 'missing.gguf' and no such file"):
        registry.resolve("missing.gguf")
    with pytest.raises(ModelNotFound, match="is a directory"):
        registry.resolve(str(tmp_path))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(ModelCorrupt, match="not a GGUF model"):
        registry.resolve(str(bad))
