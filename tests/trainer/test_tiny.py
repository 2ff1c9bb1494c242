"""The tiny-model factory: real tokenizers (Tekken with its FIM tokens, Qwen's BPE), tiny random weights."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from trainer.tiny import make_tiny_model


def test_tiny_mistral_has_devstral_tokenizer_and_architecture(tiny_models, tmp_path, tiny_home, monkeypatch):
    path = tiny_models("mistral")
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert type(model).__name__ == "MistralForCausalLM"
    assert model.config.hidden_size == 64 and not model.config.tie_word_embeddings
    assert len(tok) == model.config.vocab_size == 131072
    ids = [tok.convert_tokens_to_ids(t) for t in ("[PREFIX]", "[SUFFIX]", "[MIDDLE]")]
    assert ids == [14, 16, 15]  # Tekken's special-token ranks
    assert tok.decode(tok("defmodule A do\nend", add_special_tokens=False).input_ids) == "defmodule A do\nend"
    assert tok.chat_template and "[INST]" in tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False
    )
    # Same seed, same weights.
    monkeypatch.setenv("POTION_HOME", str(tiny_home))
    again = AutoModelForCausalLM.from_pretrained(make_tiny_model("mistral", tmp_path / "again", seed=0))
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("arch,cls", [("qwen2", "Qwen2ForCausalLM"), ("llama", "LlamaForCausalLM")])
def test_tiny_qwen2_and_llama_use_the_default_models_tokenizer(tiny_models, arch, cls):
    path = tiny_models(arch)
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert type(model).__name__ == cls
    assert tok.convert_tokens_to_ids("<|fim_prefix|>") == 151659
    ids = tok("def x, do: 1", return_tensors="pt").input_ids
    loss = model(ids, labels=ids).loss
    assert torch.isfinite(loss)


def test_unknown_architecture(tmp_path):
    with pytest.raises(ValueError, match="unknown tiny architecture 'gpt2'"):
        make_tiny_model("gpt2", tmp_path)
