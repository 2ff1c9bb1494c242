"""FIM items from held-out files, answered through the editor's pipeline (the same text the language
server shows), the plain-PSM baseline, shared generations, the compile check, the ablation variants."""

from __future__ import annotations

from pathlib import Path

import pytest
from eval_helpers import needs_elixir

from evals import fim
from evals.ablation import variants_for
from lsp.engine import CompletionEngine, CompletionRequest, EngineConfig
from potion.backends import FakeBackend

SOURCE = '''defmodule Shop.Cart do
  @moduledoc """
  A cart.
  """

  def total(items) do
    items
    |> Enum.map(fn item -> item.price * item.qty end)
    |> Enum.sum()
  end

  def empty?(items) do
    Enum.empty?(items)
  end
end
'''


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for i in range(12):
        (tmp_path / f"cart_{i}.ex").write_text(SOURCE.replace("Shop.Cart", f"Shop.Cart{i}"))
    return tmp_path


def test_items_blank_a_line_or_a_body_and_split_by_file(folder: Path) -> None:
    tune = fim.extract_items(folder, split="tune", count=50, body_share=0.3)
    holdout = fim.extract_items(folder, split="holdout", count=50)
    assert tune and holdout and not {i.path for i in tune} & {i.path for i in holdout}
    assert fim.extract_items(folder, split="tune", count=50, body_share=0.3) == tune  # seeded
    for item in tune:
        text = (folder / item.path).read_text()
        assert item.prefix + item.middle + item.suffix == text
    line = next(i for i in tune if i.kind == "line")
    assert line.prefix.endswith("\n    ") and "\n" not in line.middle
    body = next(i for i in tune if i.kind == "body")
    assert body.middle.startswith("items\n    |> Enum.map") or body.middle == "Enum.empty?(items)"


def test_the_pipeline_variant_scores_exactly_what_the_language_server_shows(folder: Path) -> None:
    item = next(i for i in fim.extract_items(folder, split="tune", count=50) if i.kind == "line")
    answer = "    |> Enum.map(fn item -> item.price * item.qty end)\n    |> Enum.sum()\n  end\n\n  def x do"
    runner = fim.FimRunner(FakeBackend(answer), folder)
    row = runner.answer(item, fim.variant("pipeline"))
    engine = CompletionEngine(EngineConfig(debounce_ms=0), backend=FakeBackend(answer))
    request = CompletionRequest(
        "file://" + str(folder / item.path), item.prefix, item.suffix, path=str(folder / item.path)
    )
    import asyncio

    shown = asyncio.run(engine.suggest(request))
    engine.close()
    assert row["text"] == shown.text and row["text"]
    assert 0 <= row["similarity"] <= 1 and row["exact"] == (row["text"].strip() == item.middle.strip())


def test_plain_baseline_keeps_1500_500_characters_and_the_first_line(folder: Path) -> None:
    item = fim.extract_items(folder, split="tune", count=50)[0]
    backend = FakeBackend("    first line\nsecond")
    row = fim.FimRunner(backend, folder).answer(item, fim.PLAIN)
    assert row["text"] == "    first line"
    prompt = backend.prompts[0]
    assert prompt.startswith("<|fim_prefix|>" + item.prefix[-1500:]) and prompt.endswith("<|fim_middle|>")


def test_post_processing_variants_reuse_the_generation(folder: Path) -> None:
    items = fim.extract_items(folder, split="tune", count=3)
    backend = FakeBackend("x = 1\n    y = 2\n")
    runner = fim.FimRunner(backend, folder)
    variants = variants_for(["trim", "lines", "indent"])
    rows = fim.run_variants(runner, items, variants)
    assert len(rows) == len(items) * len(variants)
    # pipeline + indent-healing (same prompt, constrained) + keep-indent + plain generate; the
    # trim/lines variants replay the pipeline's pieces, and generate again only where the pipeline stopped
    # before the variant's answer was complete
    assert 4 * len(items) <= runner.generations <= 5 * len(items) < len(rows)
    summary = fim.summarize(rows)
    assert set(summary) == {v.name for v in variants}


@pytest.mark.elixir
@needs_elixir
def test_compile_check_after_insertion(folder: Path) -> None:
    from evals.sandbox import Sandbox

    items = [i for i in fim.extract_items(folder, split="tune", count=50) if i.kind == "line"][:2]
    rows = [
        {"item": items[0].id, "text": items[0].middle},
        {"item": items[1].id, "text": "Enum.map(items, fn -> end"},
    ]
    fim.compile_checks(items, rows, folder, Sandbox(jobs=1))
    assert [r["compiles"] for r in rows] == [True, False]
    assert rows[0]["compile_mode"] == "compile"
