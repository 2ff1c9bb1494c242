"""`potion eval gain`: the targets' arithmetic, the held-out and general-code samples, and bad flags.
The whole command runs on real llama.cpp models in tests/test_finetune_loop.py."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus import general
from evals import gain
from evals.errors import EvalError
from potion.cli import main


def result(**values: float) -> dict:
    base = {"elixir_ppl": 4.0, "general_ppl": 3.0, "fim_exact": 0.10, "pass_at_1": 0.30}
    return {**base, **values}


def test_verdicts_apply_each_target_rule() -> None:
    base = result()
    met = gain.verdicts(base, result(elixir_ppl=3.6, general_ppl=3.09, fim_exact=0.12, pass_at_1=0.28))
    assert {m: v["met"] for m, v in met.items()} == {
        "elixir_ppl": True,  # 0.90 x exactly
        "general_ppl": True,  # 1.03 x exactly
        "fim_exact": True,
        "pass_at_1": True,  # base - 0.02 exactly
    }
    assert met["elixir_ppl"]["value"] == pytest.approx(0.9)
    missed = gain.verdicts(base, result(elixir_ppl=3.7, general_ppl=3.2, fim_exact=0.10, pass_at_1=0.27))
    assert not any(v["met"] for v in missed.values())  # equal FIM exact is not better
    summary = gain.summary_json(base, result(elixir_ppl=3.0), train_minutes=12.5)
    assert summary == {
        "elixir_ppl_ratio": 0.75,
        "general_ppl_ratio": 1.0,
        "fim_exact_base": 0.10,
        "fim_exact_tuned": 0.10,
        "pass_at_1_base": 0.30,
        "pass_at_1_tuned": 0.30,
        "train_minutes": 12.5,
    }


def test_general_code_halves_are_disjoint_and_leave_out_tests_and_small_files(tmp_path: Path) -> None:
    names = [f"m{i}.py" for i in range(12)] + [
        "pkg/b.py",
        "test/t.py",
        "pkg/tests/u.py",
        "site-packages/x.py",
    ]
    for rel in names:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n" * 400)
    (tmp_path / "small.py").write_text("x = 1\n")
    train = [n for n, _ in general.general_code("train", tmp_path)]
    held = [n for n, _ in general.general_code("eval", tmp_path)]
    assert sorted(train + held) == sorted(names[:13]) and not set(train) & set(held)
    assert train and held  # 13 names: both halves hold some
    assert [n for n, _ in gain.general_code(50, root=tmp_path)] == held  # the eval half only
    two = gain.general_code(2, seed=3, root=tmp_path)
    assert two == gain.general_code(2, seed=3, root=tmp_path) and len(two) == 2
    with pytest.raises(EvalError, match="no Python sources"):
        gain.general_code(2, root=tmp_path / "pkg" / "tests" / "none")
    with pytest.raises(ValueError, match="half"):
        general.general_code("both", tmp_path)


def test_heldout_elixir_reads_the_validation_split(tmp_path: Path) -> None:
    with pytest.raises(EvalError, match="validation.parquet does not exist") as caught:
        gain.heldout_elixir(tmp_path, 4)
    assert "potion corpus build" in caught.value.hint
    (tmp_path / "stage1").mkdir()
    rows = {
        "text": ["defmodule A do\nend\n", "  \n", "defmodule B do\nend\n"],
        "path": ["lib/a.ex", "lib/empty.ex", "lib/b.ex"],
        "project": ["mix", "mix", "mix"],
        "source": ["x"] * 3,
        "license": ["Apache-2.0"] * 3,
        "sha": ["0"] * 3,
    }
    pq.write_table(pa.table(rows), tmp_path / "stage1" / "validation.parquet")
    docs = gain.heldout_elixir(tmp_path, 10)
    assert docs == [("mix/lib/a.ex", "defmodule A do\nend\n"), ("mix/lib/b.ex", "defmodule B do\nend\n")]


def test_bad_flags_name_the_flag(tmp_path: Path, capsys) -> None:
    assert main(["eval", "gain", "a", "b", "--corpus", str(tmp_path / "none")]) == 2
    assert "--corpus" in capsys.readouterr().err
    assert (
        main(
            [
                "eval",
                "gain",
                "a",
                "b",
                "--corpus",
                str(tmp_path),
                "--fim-folder",
                str(tmp_path),
                "--ppl-docs",
                "0",
            ]
        )
        == 2
    )
    assert "--ppl-docs" in capsys.readouterr().err
    assert (
        main(
            [
                "eval",
                "gain",
                "a",
                "b",
                "--corpus",
                str(tmp_path),
                "--fim-folder",
                str(tmp_path),
                "--run",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "--run" in capsys.readouterr().err
