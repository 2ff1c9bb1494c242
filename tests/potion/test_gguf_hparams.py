"""`check_hparams` and `potion models verify`: a well-formed header whose hyper-parameters do not match the
tensors (the crafted `block_count = 1000` that aborts llama.cpp) is refused with one line."""

from __future__ import annotations

import pytest

from potion import cli, registry
from potion.errors import ModelCorrupt
from potion.gguf_header import check_gguf, check_hparams


def layers(n: int) -> list[tuple[str, list[int], int]]:
    tensors = [("token_embd.weight", [32, 8], 0)]
    for i in range(n):
        tensors += [(f"blk.{i}.attn_q.weight", [32, 32], 0), (f"blk.{i}.ffn_up.weight", [32, 32], 0)]
    return tensors


def qwen2(make_gguf, blocks: int, n_layers: int = 2, **extra):
    meta = {"general.architecture": "qwen2", "qwen2.block_count": blocks, "qwen2.attention.head_count": 2}
    return make_gguf("m.gguf", metadata={**meta, **extra}, tensors=layers(n_layers))


def test_a_matching_model_passes(make_gguf) -> None:
    check_hparams(qwen2(make_gguf, 2))
    # Some architectures add layers past block_count's tensors (none has fewer tensors than blocks).
    check_hparams(qwen2(make_gguf, 2, n_layers=3))


def test_a_block_count_past_the_layers_present_is_refused(make_gguf) -> None:
    path = qwen2(make_gguf, 20)
    check_gguf(path)  # well-formed: the structural check cannot see it
    with pytest.raises(ModelCorrupt, match=r"qwen2.block_count = 20 but holds tensors for 2 layers"):
        check_hparams(path)


@pytest.mark.parametrize("blocks", [0, 1000])
def test_a_block_count_llama_cpp_asserts_on_is_refused(make_gguf, blocks: int) -> None:
    with pytest.raises(ModelCorrupt, match=rf"block_count = {blocks}; llama.cpp allows 1 to 512"):
        check_hparams(qwen2(make_gguf, blocks, n_layers=0))


def test_zero_attention_heads_are_refused(make_gguf) -> None:
    with pytest.raises(ModelCorrupt, match=r"qwen2.attention.head_count = 0"):
        check_hparams(qwen2(make_gguf, 2, **{"qwen2.attention.head_count": 0}))


def test_adapters_and_files_without_an_architecture_are_left_alone(make_gguf) -> None:
    check_hparams(
        make_gguf(
            "a.gguf",
            metadata={"general.type": "adapter", "general.architecture": "qwen2", "qwen2.block_count": 99},
            tensors=layers(1),
        )
    )
    check_hparams(make_gguf("b.gguf", metadata={"general.name": "x"}, tensors=layers(1)))


def test_models_verify_reports_the_crafted_header_in_one_line(make_gguf, potion_home, capsys) -> None:
    path = qwen2(make_gguf, 1000)
    with pytest.raises(ModelCorrupt):
        registry.verify(str(path))
    assert cli.main(["models", "verify", str(path)]) != 0
    err = capsys.readouterr().err
    assert "block_count = 1000" in err and "Traceback" not in err
    assert cli.main(["models", "verify", str(qwen2(make_gguf, 2))]) == 0
