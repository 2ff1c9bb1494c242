"""Perplexity through llama.cpp: the maths on a scripted backend, and the real default model (e2e)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from evals.perplexity import perplexity
from potion.backends import FakeBackend


class ScoringFake(FakeBackend):
    def token_logprobs(self, text: str) -> list[float]:
        return [math.log(0.5)] * (len(self.tokenize(text)) - 1)


def test_perplexity_is_exp_of_the_mean_negative_log_likelihood(tmp_path: Path) -> None:
    (tmp_path / "a.ex").write_text("defmodule A do\n  def f, do: 1\nend\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.exs").write_text("IO.puts(:ok)\n")
    (tmp_path / "notes.md").write_text("not elixir")
    result = perplexity(ScoringFake(), tmp_path)
    assert result["perplexity"] == pytest.approx(2.0)
    assert set(result["files"]) == {"a.ex", "sub/b.exs"}


@pytest.mark.e2e
def test_the_default_model_finds_elixir_likelier_than_noise(tmp_path: Path) -> None:
    from potion import registry
    from potion.backends import LlamaCppBackend

    backend = LlamaCppBackend(registry.resolve(), n_ctx=512, n_threads=1)
    try:
        code = backend.token_logprobs(
            "defmodule Counter do\n  use GenServer\n\n  def init(n), do: {:ok, n}\nend\n"
        )
        noise = backend.token_logprobs("zq xv blorp wug kk 9 ;; ]] end end do fn")
        after = "".join(backend.complete("defmodule A do\n  def", max_tokens=4))
    finally:
        backend.close()
    assert math.exp(-sum(code) / len(code)) < 10 < math.exp(-sum(noise) / len(noise))
    assert after  # generation still works after scoring (the cache was left consistent)


@pytest.mark.e2e
def test_the_cli_reaches_the_same_model_by_default_by_name_and_by_gguf_path(tmp_path: Path, capsys) -> None:
    """`--model` through evals.models.open_model: nothing, the registry name and the .gguf path are one model,
    so they score a file the same; a model that is not there says which and why."""
    from potion import registry
    from potion.cli import main

    (tmp_path / "counter.ex").write_text(
        "defmodule Counter do\n  use Agent\n\n  def start_link(n), do: Agent.start_link(fn -> n end)\nend\n"
    )
    results = []
    for model in ([], ["--model", registry.DEFAULT_MODEL], ["--model", str(registry.resolve())]):
        assert main(["eval", "perplexity", str(tmp_path), *model, "--json", "--no-progress"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[0]["tokens"] > 10 and 1 < results[0]["perplexity"] < 50
    assert results[1] == results[0] and results[2] == results[0]
    assert main(["eval", "perplexity", str(tmp_path), "--model", str(tmp_path / "gone.gguf")]) == 1
    assert "gone.gguf" in capsys.readouterr().err
