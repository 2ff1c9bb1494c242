"""Parity of the exported GGUFs with transformers, on tiny random Mistral (Tekken) and Qwen2 models:
logits on Elixir text, the adapter GGUF applied at load time, and the tokenizer's ids."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest
from conftest import ARCHS, TinyExport, default_gguf, elixir_text

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
N_TOKENS = 200


def hf_ids(tiny: TinyExport) -> list[int]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny.export.folder / "hf")
    return tokenizer(elixir_text(), add_special_tokens=False)["input_ids"][:N_TOKENS]


def hf_logits(tiny: TinyExport, ids: list[int]) -> np.ndarray:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny.export.folder / "hf", dtype=torch.float32)
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].numpy()


def gguf_logits(path, ids: list[int], *, lora=None) -> np.ndarray:
    """Logits of every position from llama.cpp, with an f32 KV cache (its f16 default adds ~1e-3 noise)."""
    import llama_cpp

    llm = llama_cpp.Llama(
        str(path),
        n_ctx=512,
        n_batch=512,
        logits_all=True,
        type_k=llama_cpp.GGML_TYPE_F32,
        type_v=llama_cpp.GGML_TYPE_F32,
        lora_path=str(lora) if lora else None,
        verbose=False,
    )
    try:
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)], dtype=np.float32)
    finally:
        llm.close()


@pytest.fixture(scope="module", params=ARCHS)
def parity(request, tiny_exports):
    tiny = tiny_exports[request.param]
    ids = hf_ids(tiny)
    assert len(ids) == N_TOKENS
    return tiny, ids, hf_logits(tiny, ids)


def test_f32_gguf_logits_match_transformers(parity):
    tiny, ids, reference = parity
    logits = gguf_logits(tiny.export.file("f32").path, ids)
    assert logits.shape == reference.shape
    assert (logits.argmax(-1) == reference.argmax(-1)).all()  # top-1 identical at every position
    scale = np.abs(reference).max()
    assert np.abs(logits - reference).max() < 1e-4 * scale


def test_f16_gguf_top1_agrees(parity):
    tiny, ids, reference = parity
    logits = gguf_logits(tiny.export.file("f16").path, ids)
    assert (logits.argmax(-1) == reference.argmax(-1)).mean() >= 0.99
    assert np.abs(logits - reference).max() < 0.02 * np.abs(reference).max()


def test_adapter_gguf_on_the_base_matches_the_merged_model(parity):
    tiny, ids, reference = parity
    plain = gguf_logits(tiny.base_gguf, ids)
    adapted = gguf_logits(tiny.base_gguf, ids, lora=tiny.export.file("lora").path)
    assert (adapted.argmax(-1) == reference.argmax(-1)).mean() >= 0.99
    # ...and the adapter really changes the model: without it the logits are those of another model.
    assert np.abs(plain - reference).max() > 100 * np.abs(adapted - reference).max()


@pytest.mark.parametrize("arch", ARCHS)
def test_gguf_tokenizer_ids_equal_hf_ids_on_elixir(tiny_exports, arch):
    import llama_cpp
    from transformers import AutoTokenizer

    tiny = tiny_exports[arch]
    # NFC: Qwen2's HF tokenizer normalizes to NFC and llama.cpp does not, so a decomposed "é" (string.ex
    # has some) tokenizes differently in both, for the original GGUF as much as for ours.
    text = unicodedata.normalize("NFC", elixir_text(20_000))
    assert "日本語" in text and "🎉" in text
    expected = AutoTokenizer.from_pretrained(tiny.export.folder / "hf")(text, add_special_tokens=False)[
        "input_ids"
    ]
    llm = llama_cpp.Llama(str(tiny.export.file("q8_0").path), vocab_only=True, verbose=False)
    try:
        assert llm.tokenize(text.encode(), add_bos=False, special=False) == expected
    finally:
        llm.close()


def test_an_export_from_a_gguf_base_keeps_the_gguf_tokenizer(tiny_exports):
    """The tiny Qwen2's tokenizer was rebuilt from the default model's GGUF: the export's GGUF gives the
    very ids the default model's GGUF gives."""
    import llama_cpp

    original = default_gguf()
    text = elixir_text(20_000)
    ids = []
    for path in (original, tiny_exports["qwen2"].export.file("q8_0").path):
        llm = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
        ids.append(llm.tokenize(text.encode(), add_bos=False, special=True))
        llm.close()
    assert ids[0] == ids[1]
