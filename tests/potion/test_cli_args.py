"""Flags derived from argument dataclasses (potion.cli_args)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from potion.cli_args import add_arguments, add_command, arg, flag_name, from_namespace


@dataclass
class DemoArgs:
    source: Path = arg("input folder", positional=True)
    model: str | None = arg("model name", default=None)
    max_tokens: int = arg("most tokens", default=64)
    rate: float = arg("a rate", default=0.5)
    quant: list[str] = arg("quant types", default_factory=lambda: ["q8_0"], sep=",")
    sets: list[str] = arg("overrides", default_factory=list, flag="--set", repeat=True)
    progress: bool = arg("progress bars", default=True)
    mode: str = arg("mode", default="fast", choices=["fast", "slow"])
    internal: int = field(default=3)  # not a flag

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"--max-tokens must be at least 1, got {self.max_tokens}")


@dataclass
class RequiredArgs:
    name: str = arg("a required flag")


def parse(cls, argv):
    parser = argparse.ArgumentParser(prog="t")
    add_arguments(parser, cls)
    return from_namespace(cls, parser.parse_args(argv))


def test_defaults_come_from_the_dataclass():
    args = parse(DemoArgs, ["src"])
    assert args == DemoArgs(source=Path("src"))
    assert args.quant == ["q8_0"] and args.sets == [] and args.progress is True and args.internal == 3


def test_every_kind_of_flag_is_parsed_to_its_type():
    args = parse(
        DemoArgs,
        [
            "src",
            "--model",
            "m",
            "--max-tokens",
            "9",
            "--rate",
            "0.25",
            "--quant",
            "q4_k_m, q8_0",
            "--set",
            "a=1",
            "--set",
            "b=2",
            "--no-progress",
            "--mode",
            "slow",
        ],
    )
    assert args.source == Path("src") and args.model == "m" and args.max_tokens == 9 and args.rate == 0.25
    assert args.quant == ["q4_k_m", "q8_0"] and args.sets == ["a=1", "b=2"]
    assert args.progress is False and args.mode == "slow"


def test_post_init_validation_reaches_the_caller():
    with pytest.raises(ValueError, match="--max-tokens"):
        parse(DemoArgs, ["src", "--max-tokens", "0"])


def test_bad_type_and_missing_required_flag_are_argparse_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        parse(DemoArgs, ["src", "--max-tokens", "many"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        parse(RequiredArgs, [])
    assert "--name" in capsys.readouterr().err
    assert parse(RequiredArgs, ["--name", "x"]).name == "x"


def test_help_shows_defaults_and_flag_names():
    parser = argparse.ArgumentParser(prog="t")
    add_arguments(parser, DemoArgs)
    text = parser.format_help()
    assert "--max-tokens" in text and "(default: 64)" in text and "--no-progress" in text
    assert "--set" in text and "(default: q8_0)" in text
    fields = {f.name: f for f in DemoArgs.__dataclass_fields__.values()}
    assert flag_name(fields["max_tokens"]) == "--max-tokens" and flag_name(fields["source"]) == "SOURCE"


def test_add_command_calls_the_function_with_the_dataclass():
    parser = argparse.ArgumentParser(prog="t")
    sub = parser.add_subparsers()
    seen = []
    add_command(sub, "demo", DemoArgs, lambda a: seen.append(a) or 7, help="a demo")
    ns = parser.parse_args(["demo", "here", "--max-tokens", "5"])
    assert ns.func(ns) == 7
    assert seen == [DemoArgs(source=Path("here"), max_tokens=5)]
