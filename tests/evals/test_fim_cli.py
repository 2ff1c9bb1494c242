"""`potion eval fim` end to end: items from a folder of Elixir files, answered by a scripted
OpenAI-compatible server through each variant of the ablation, scored, compile-checked, and reported as a
Markdown table with the JSON of its rows next to it.

The server writes the same answer at every cursor: `Enum.count(items)`, then the function's `end` and
another function. What each variant must show for it, whether the file then compiles, and which prompts
the server must have received follow from the documented rules (`evals.fim`, `potion.completion`).
"""

from __future__ import annotations

import difflib
import json
import re
import statistics
from pathlib import Path

import pytest
from eval_helpers import needs_elixir
from fakes_openai import FakeOpenAIServer

from evals import fim
from potion.backends.fake import fake_pieces
from potion.cli import main

pytestmark = pytest.mark.timeout(60)

ANSWER = "Enum.count(items)\n  end\n\n  def extra(items) do\n    items\n  end\n"
LINE = "Enum.count(items)"  # the answer's first line: what a one-line variant shows
WHOLE = ANSWER.rstrip()  # what "trim-none" shows where a block is wanted
# `--ablate header,trim --variants ...` keeps these, in the order of evals.ablation.GROUPS.
VARIANTS = ["pipeline", "trim-none", "no-path-header", "plain-psm"]
COLUMNS = ["variant", "items", "exact match", "edit similarity", "vs plain", "compiles", "s/item (median)"]
ITEMS = 9
# Lines that bind a variable a later line of their function uses: without them the file cannot compile.
BINDINGS = ("subtotal = ", "base = ", "cut = ")

DOC = "\n".join(
    f"  Line {n} of the documentation: what a cart holds and how it is priced." for n in range(22)
)
TAIL = "\n".join(f'  def label_{n}(items), do: "{n}: " <> names(items)' for n in range(12))


def source(module: str, free_over: int) -> str:
    """A module whose functions give line and body items, each cursor with more than 1,500 characters
    before it (the moduledoc) and 500 after it (the one-line functions at the end)."""
    return f'''defmodule Shop.{module} do
  @moduledoc """
{DOC}
  """

  def total(items) do
    subtotal = Enum.sum(Enum.map(items, fn item -> item.price * item.qty end))
    subtotal + shipping(items)
  end

  def shipping(items) do
    if Enum.count(items) > {free_over}, do: 0, else: 5
  end

  def count(items) do
    Enum.count(items)
  end

  def discount(items, percent) do
    base = total(items)
    cut = div(base * percent, 100)
    base - cut
  end

  def names(items) do
    items
    |> Enum.map(fn item -> item.name end)
    |> Enum.join(", ")
  end

{TAIL}
end
'''


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    names = {"cart.ex": "Cart", "stock.ex": "Stock", "order.ex": "Order", "price.ex": "Price"}
    for i, (name, module) in enumerate(names.items()):
        (root / name).write_text(source(module, i + 2), encoding="utf-8")
    assert sorted(fim.split_of(n) for n in names) == ["holdout", "holdout", "tune", "tune"]
    return root


def starts_a_body(item: fim.FimItem) -> bool:
    """The cursor starts an empty body (its line follows a `do` line and the function's `end` follows
    it): where the "smart" lines rule lets a block through."""
    return item.prefix.rstrip(" ").endswith(" do\n") and item.suffix.startswith("\n  end\n")


def expected_text(item: fim.FimItem, variant: str) -> str:
    # "trim-none" keeps the whole answer where a block is wanted; elsewhere every variant keeps one line
    # (the pipeline: the next line dedents out of the block / repeats `  end`; plain: the first line).
    return WHOLE if variant == "trim-none" and starts_a_body(item) else LINE


def expected_compiles(item: fim.FimItem, text: str) -> bool:
    # The whole answer adds an `end` (a syntax error). One line compiles, unless it replaced a line that
    # binds a variable the body's next lines use (a body item replaces those lines too).
    return text == LINE and not (item.kind == "line" and item.middle.startswith(BINDINGS))


def table_rows(markdown: str) -> list[list[str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    assert [c.strip() for c in lines[0].strip("|").split("|")] == COLUMNS
    assert re.fullmatch(r"\|---\|(---:\|){6}", lines[1])
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]


def run_fim(
    folder: Path, out: Path, split: str, *extra: str, capsys: pytest.CaptureFixture[str]
) -> tuple[FakeOpenAIServer, str]:
    with FakeOpenAIServer(fake_pieces(ANSWER), model_id="qwen2.5-coder-1.5b") as server:
        args = ["eval", "fim", "--model", server.url, "--folder", str(folder), "--split", split]
        args += ["--items", str(ITEMS), "--ablate", "header,trim"]
        args += ["--variants", "plain-psm,trim-none,no-path-header", "--out", str(out), "--no-progress"]
        assert main([*args, *extra]) == 0
    printed = capsys.readouterr().out
    return server, printed


def check_report(
    folder: Path, out: Path, split: str, server: FakeOpenAIServer, printed: str, *, compiled: bool
) -> tuple[list[fim.FimItem], list[dict]]:
    """What both runs must show: the rows, the table, the JSON and the prompts the server received."""
    items = fim.extract_items(folder, split=split, count=ITEMS)
    assert len(items) == ITEMS and {i.split for i in items} == {split}
    assert {i.kind for i in items} == {"line", "body"}
    by_id = {i.id: i for i in items}

    markdown = out.read_text(encoding="utf-8")
    assert printed == markdown + "\n"  # printed as written
    assert markdown.startswith(f"### {split} split: {ITEMS} items of {folder}, model {server.url}\n")
    document = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    rows, summary = document["rows"], document["summary"]
    assert document["args"]["split"] == split and document["args"]["compile_check"] == str(compiled)
    # Partial results, one row a line as they came, end up equal to the final rows (less the compile check).
    partial = [json.loads(line) for line in out.with_suffix(".rows.jsonl").read_text().splitlines()]
    assert partial == [{k: v for k, v in r.items() if not k.startswith("compile")} for r in rows]

    # Every item with every variant, item-major, each shown and scored by the documented rules.
    assert [(r["item"], r["variant"]) for r in rows] == [(i.id, v) for i in items for v in VARIANTS]
    for row in rows:
        item = by_id[row["item"]]
        assert (row["kind"], row["split"]) == (item.kind, split)
        assert row["text"] == expected_text(item, row["variant"]), row
        assert row["exact"] == (row["text"] == item.middle), row
        ratio = difflib.SequenceMatcher(None, row["text"], item.middle.strip(), autojunk=False).ratio()
        assert row["similarity"] == pytest.approx(ratio), row
        assert row["seconds"] >= 0
        if compiled:
            assert row["compile_mode"] == "compile", row  # the original files compile here
            assert row["compiles"] == expected_compiles(item, row["text"]), row
        else:
            assert "compiles" not in row and "compile_mode" not in row

    # The summary is the rows' means; the table shows the summary, one row per variant.
    assert list(summary) == VARIANTS
    table = table_rows(markdown)
    assert [cells[0] for cells in table] == VARIANTS
    plain = statistics.fmean(r["similarity"] for r in rows if r["variant"] == "plain-psm")
    for cells in table:
        name, s = cells[0], summary[cells[0]]
        mine = [r for r in rows if r["variant"] == name]
        assert s["items"] == len(mine) == ITEMS and cells[1] == str(ITEMS)
        assert s["exact_match"] == pytest.approx(statistics.fmean(r["exact"] for r in mine))
        assert s["edit_similarity"] == pytest.approx(statistics.fmean(r["similarity"] for r in mine))
        assert s["seconds_median"] == pytest.approx(statistics.median(r["seconds"] for r in mine))
        assert float(cells[2].removesuffix("%")) == pytest.approx(100 * s["exact_match"], abs=0.05)
        assert float(cells[3]) == pytest.approx(s["edit_similarity"], abs=0.0005)
        assert float(cells[4].removesuffix("x")) == pytest.approx(s["edit_similarity"] / plain, abs=0.005)
        assert float(cells[6]) == pytest.approx(s["seconds_median"], abs=0.005)
        for kind in ("line", "body"):
            of_kind = [r["similarity"] for r in mine if r["kind"] == kind]
            assert s[f"{kind}_similarity"] == pytest.approx(statistics.fmean(of_kind))
        if compiled:
            assert s["compile_rate"] == pytest.approx(statistics.fmean(r["compiles"] for r in mine))
            assert float(cells[5].removesuffix("%")) == pytest.approx(100 * s["compile_rate"], abs=0.05)
        else:
            assert "compile_rate" not in s and cells[5] == "-"

    # The prompts: per item one plain-PSM prompt (1,500 characters before the cursor, 500 after, the
    # indentation kept, stopping at the line's end), and the pipeline's with and without the file's path
    # (the cursor's indentation left to the model).
    bodies = server.bodies("/v1/completions")
    sent = [b["prompt"] for b in bodies]
    for item in items:
        assert len(item.prefix) > 1500 and len(item.suffix) > 500  # the baseline's cut is exercised
        plain_prompt = f"<|fim_prefix|>{item.prefix[-1500:]}<|fim_suffix|>{item.suffix[:500]}<|fim_middle|>"
        plain_bodies = [b for b in bodies if b["prompt"] == plain_prompt]
        assert len(plain_bodies) == 1, item.id
        assert "\n" in plain_bodies[0]["stop"] and plain_bodies[0]["max_tokens"] == 64
        cursor = f"{item.prefix.rstrip(' ')[-200:]}<|fim_suffix|>{item.suffix[:100]}"
        header = f"<|file_sep|>{folder / item.path}\n<|fim_prefix|>"
        assert any(p.startswith(header) and cursor in p for p in sent), item.id
        assert any(p.startswith("<|fim_prefix|>") and cursor in p and "<|file_sep|>" not in p for p in sent)
    # Nothing else was asked: each prompt is one of those, for one of this split's items.
    for prompt in sent:
        assert prompt.endswith("<|fim_middle|>")
        owner = [i for i in items if f"{i.prefix.rstrip(' ')[-200:]}<|fim_suffix|>" in prompt]
        owner += [i for i in items if prompt.startswith(f"<|fim_prefix|>{i.prefix[-1500:]}<|fim_suffix|>")]
        assert owner, prompt[-300:]
    return items, rows


def test_fim_without_compile_check_on_the_tune_split(
    folder: Path, tmp_path: Path, potion_home, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report" / "x.md"
    server, printed = run_fim(folder, out, "tune", "--no-compile-check", capsys=capsys)
    items, rows = check_report(folder, out, "tune", server, printed, compiled=False)
    # No cursor of this sample has `Enum.count(items)` as its line: nothing matches exactly.
    assert not any(i.middle == LINE for i in items) and not any(r["exact"] for r in rows)


@pytest.mark.elixir
@needs_elixir
def test_fim_with_compile_check_on_the_holdout_split(
    folder: Path, tmp_path: Path, potion_home, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report" / "x.md"
    server, printed = run_fim(folder, out, "holdout", capsys=capsys)
    items, rows = check_report(folder, out, "holdout", server, printed, compiled=True)
    # `count`'s line is in this sample: the one-line variants match it exactly and it compiles, while
    # the whole answer there adds an `end`.
    (count,) = [i for i in items if i.middle == LINE]
    mine = {r["variant"]: r for r in rows if r["item"] == count.id}
    assert [v for v in VARIANTS if mine[v]["exact"]] == ["pipeline", "no-path-header", "plain-psm"]
    assert [v for v in VARIANTS if mine[v]["compiles"]] == ["pipeline", "no-path-header", "plain-psm"]
    # Both outcomes of the compile check occur (a removed binding, an extra `end`; a clean insertion).
    assert {r["compiles"] for r in rows} == {True, False}


@pytest.mark.parametrize(
    ("variants", "needles"),
    [
        ("pipeline,trim-none", ["--variants: trim-none", "--ablate trim"]),  # its group is not ablated
        (
            "no-indent-healing",
            ["--variants: no variant named no-indent-healing", "indent-healing"],
        ),  # old name
    ],
)
def test_a_variant_that_would_not_run_exits_2_naming_it(
    variants: str, needles: list[str], folder: Path, tmp_path: Path, potion_home, capsys
) -> None:
    out = tmp_path / "report" / "x.md"
    with FakeOpenAIServer(fake_pieces(ANSWER), model_id="qwen2.5-coder-1.5b") as server:
        args = ["eval", "fim", "--model", server.url, "--folder", str(folder), "--ablate", "header"]
        assert main([*args, "--variants", variants, "--out", str(out), "--no-progress"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("potion: error: ") and all(n in line for n in needles), line
    assert server.requests == [] and not out.parent.exists()  # refused before the model or a file


def test_the_flags_ablation_groups_are_the_ablations_groups():
    """`--ablate` validates against evals.commands.fim.ABLATIONS (kept light for the CLI's start-up): it must
    name exactly the groups evals.ablation runs."""
    from evals.ablation import GROUPS
    from evals.commands.fim import ABLATIONS

    assert sorted(ABLATIONS) == sorted(GROUPS)
