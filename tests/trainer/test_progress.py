"""The training progress bar: steps, loss, tokens/s and the time left, on stderr, from rank 0 only."""

from __future__ import annotations

import re

import pytest
from transformers import TrainerControl, TrainerState

from trainer.report import RichProgress


def drive(bar: RichProgress, *, rank_zero: bool = True) -> None:
    """What the Trainer calls: begin, three of four steps each with a logged loss, end."""
    state = TrainerState(max_steps=4, global_step=0, num_input_tokens_seen=0)
    state.is_world_process_zero = rank_zero
    control = TrainerControl()
    bar.on_train_begin(None, state, control)
    for step in range(1, 4):
        state.global_step, state.num_input_tokens_seen = step, step * 1000
        bar.on_step_end(None, state, control)
        bar.on_log(None, state, control, logs={"loss": 2.0 / step})
    bar.on_train_end(None, state, control)


def test_the_bar_shows_steps_loss_tokens_per_second_and_time_left(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "150")
    drive(RichProgress("stage 1"))
    out = capsys.readouterr()
    assert out.out == ""  # stdout stays for the run's own lines
    line = out.err.strip().splitlines()[-1]
    match = re.search(r"stage 1 .* 3/4 loss 0\.6667 +([\d,]+) tok/s (\d+:\d\d:\d\d|-:--:--)", line)
    assert match, line
    assert int(match.group(1).replace(",", "")) > 0


@pytest.mark.parametrize("enabled, rank_zero", [(False, True), (True, False)])
def test_no_bar_when_disabled_or_on_other_ranks(enabled, rank_zero, capsys):
    drive(RichProgress("stage 1", enabled=enabled), rank_zero=rank_zero)
    assert capsys.readouterr().err == ""
