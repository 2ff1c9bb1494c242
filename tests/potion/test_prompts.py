"""FIM templates, family detection and token-budgeted prompts, with character-level tokenizers."""

from __future__ import annotations

import pytest

from potion.backends import FakeBackend, ModelInfo
from potion.prompts import (
    TEMPLATES,
    CompletionPrompt,
    completion_prompt,
    cursor_indent,
    dedent_answer,
    detect_family,
    fim_tokens,
    keep_head,
    keep_tail,
)

ALL_SPECIALS = sorted({m for t in TEMPLATES.values() for m in t.markers()}, key=len, reverse=True)


def chars(text: str) -> list[int]:
    """One token per character, except that a family's special strings are one token (like llama.cpp)."""
    tokens: list[int] = []
    i = 0
    while i < len(text):
        special = next((s for s in ALL_SPECIALS if text.startswith(s, i)), None)
        tokens.append(-1 if special else ord(text[i]))
        i += len(special) if special else 1
    return tokens


def info(family: str) -> ModelInfo:
    return ModelInfo(name=f"test-{family}", family=family, fim_tokens=fim_tokens(family))


def build(family: str, prefix: str, suffix: str, budget: int = 10_000, **kw) -> CompletionPrompt:
    return completion_prompt(prefix, suffix, info=info(family), tokenize=chars, budget_tokens=budget, **kw)


# -- family detection --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vocab", "family"),
    [
        (["a", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_sep|>"], "qwen2.5-coder"),
        (["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_separator|>"], "codegemma"),
        (["<s>", "[INST]", "[SUFFIX]", "[PREFIX]", "[MIDDLE]"], "codestral"),
        (["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>", "<repo_name>"], "starcoder2"),
        (["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<reponame>"], "starcoder"),
        (["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"], "deepseek-coder"),
        (["▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"], "codellama"),
        (["<|begin_of_text|>", "<|eot_id|>", "hello"], "unknown"),
        (["<|fim_prefix|>"], "unknown"),  # half a family is no family
        ([], "unknown"),
    ],
)
def test_detect_family(vocab: list[str], family: str) -> None:
    assert detect_family(vocab) == family
    assert detect_family(iter(vocab)) == family  # any iterable, read once


def test_every_family_has_markers_and_end_of_text_stops() -> None:
    for family, template in TEMPLATES.items():
        assert template.family == family
        assert template.prefix.strip() and template.suffix.strip()
        assert template.stop, family
        if template.file_sep:
            assert template.file_sep in template.stop, family
    assert "<|endoftext|>" in TEMPLATES["qwen2.5-coder"].stop
    assert "<|fim_pad|>" in TEMPLATES["qwen2.5-coder"].stop
    assert "</s>" in TEMPLATES["codestral"].stop
    assert "<EOT>" in TEMPLATES["codellama"].stop
    assert "<｜end▁of▁sentence｜>" in TEMPLATES["deepseek-coder"].stop


# -- exact formats -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "expected"),
    [
        ("qwen2.5-coder", "<|fim_prefix|>PRE<|fim_suffix|>SUF<|fim_middle|>"),
        ("codestral", "[SUFFIX]SUF[PREFIX]PRE"),  # Mistral: suffix first, model continues the prefix
        ("starcoder", "<fim_prefix>PRE<fim_suffix>SUF<fim_middle>"),
        ("deepseek-coder", "<｜fim▁begin｜>PRE<｜fim▁hole｜>SUF<｜fim▁end｜>"),
        ("codellama", "<PRE> PRE <SUF>SUF <MID>"),
    ],
)
def test_fim_formats(family: str, expected: str) -> None:
    prompt = build(family, "PRE", "SUF")
    assert prompt.text == expected
    assert prompt.fim and prompt.warning is None
    assert prompt.stop == list(TEMPLATES[family].stop)
    assert (prompt.prefix_kept, prompt.suffix_kept) == ("PRE", "SUF")


def test_repo_level_context_for_qwen() -> None:
    prompt = build(
        "qwen2.5-coder",
        "def a do\n  ",
        "\nend\n",
        path="lib/a.ex",
        repo="demo",
        extra_files=[("lib/b.ex", "defmodule B do\nend"), ("lib/c.ex", "defmodule C do\nend\n")],
    )
    assert prompt.text == (
        "<|repo_name|>demo\n"
        "<|file_sep|>lib/b.ex\ndefmodule B do\nend\n"
        "<|file_sep|>lib/c.ex\ndefmodule C do\nend\n"
        "<|file_sep|>lib/a.ex\n"
        "<|fim_prefix|>def a do\n<|fim_suffix|>\nend\n<|fim_middle|>"
    )
    assert prompt.indent == "  "  # the cursor's indentation is left to the model
    assert prompt.files_kept == ["lib/b.ex", "lib/c.ex"]


def test_starcoder2_uses_its_own_separators() -> None:
    prompt = build("starcoder2", "x", "y", path="a.ex", repo="r", extra_files=[("b.ex", "B\n")])
    assert (
        prompt.text
        == "<repo_name>r\n<file_sep>b.ex\nB\n<file_sep>a.ex\n<fim_prefix>x<fim_suffix>y<fim_middle>"
    )


def test_families_without_file_separators_ignore_extra_files() -> None:
    prompt = build("codellama", "x", "y", path="a.ex", extra_files=[("b.ex", "defmodule B do end")])
    assert prompt.text == "<PRE> x <SUF>y <MID>" and prompt.files_kept == []


def test_control_strings_inside_the_file_are_removed() -> None:
    prompt = build("qwen2.5-coder", "s = '<|endoftext|>'<|fim_middle|>", "<|file_sep|>x")
    assert prompt.text == "<|fim_prefix|>s = ''<|fim_suffix|>x<|fim_middle|>"


# -- budgets -----------------------------------------------------------------------------------------


def lines(n: int, tag: str) -> str:
    return "".join(f"{tag}{i:03d}\n" for i in range(n))


def test_budget_keeps_the_end_of_the_prefix_and_the_start_of_the_suffix_at_line_boundaries(
    no_anchor: None,
) -> None:
    prefix, suffix = lines(100, "pre") + "  cur", "sor\n" + lines(100, "suf")
    prompt = build("qwen2.5-coder", prefix, suffix, budget=203)
    assert len(chars(prompt.text)) <= 203
    assert prompt.prefix_kept.endswith("pre099\n  cur") and prefix.endswith(prompt.prefix_kept)
    assert prompt.suffix_kept.startswith("sor\nsuf000\n") and suffix.startswith(prompt.suffix_kept)
    # whole lines only, apart from the cursor line itself
    assert prompt.prefix_kept.startswith("pre") and prompt.suffix_kept.endswith("\n")
    # the prefix gets the larger share
    assert len(prompt.prefix_kept) > 2 * len(prompt.suffix_kept)


@pytest.fixture
def no_anchor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trim at any line, so that budget arithmetic is exact (anchoring has its own test)."""
    import potion.prompts

    monkeypatch.setattr(potion.prompts, "ANCHOR_LINES", 1)


def test_a_short_suffix_leaves_its_share_to_the_prefix_and_the_other_way_round(no_anchor: None) -> None:
    long, short = lines(100, "x"), "end\n"
    p = build("qwen2.5-coder", long, short, budget=120)
    assert p.suffix_kept == short and len(chars(p.text)) <= 120
    assert len(p.prefix_kept) > 120 - 3 - len(short) - 8  # all but less than a line of the rest
    s = build("qwen2.5-coder", short, long, budget=120)
    assert s.prefix_kept == short and len(s.suffix_kept) > 120 - 3 - len(short) - 8


def test_extra_files_only_get_what_the_current_file_leaves(no_anchor: None) -> None:
    other = ("lib/other.ex", lines(50, "oth"))
    tight = build("qwen2.5-coder", lines(50, "pre"), "", budget=200, path="a.ex", extra_files=[other])
    assert tight.files_kept == [] and "lib/other.ex" not in tight.text
    roomy = build("qwen2.5-coder", "x\n", "", budget=200, path="a.ex", extra_files=[other])
    assert roomy.files_kept == ["lib/other.ex"]
    assert len(chars(roomy.text)) <= 200
    assert "oth000\n" in roomy.text and "oth049" not in roomy.text  # the start of the file, cut at a line
    # typing in the current file does not change the other file's part (and so the cached prompt start)
    typed = build("qwen2.5-coder", "x = 12\n", "", budget=200, path="a.ex", extra_files=[other])
    assert typed.text.split("<|file_sep|>a.ex")[0] == roomy.text.split("<|file_sep|>a.ex")[0]


def test_trimmed_prefix_starts_on_a_stable_line_while_the_user_types() -> None:
    from potion.prompts import ANCHOR_LINES

    source = lines(400, "l")
    starts = set()
    for typed in range(0, 60, 3):  # the user types at the cursor, the prefix grows
        prompt = build("qwen2.5-coder", source + "x" * typed, "", budget=600)
        assert len(chars(prompt.text)) <= 600
        first_line = prompt.prefix_kept.split("\n", 1)[0]
        assert int(first_line[1:]) % ANCHOR_LINES == 0  # starts on a block boundary
        starts.add(first_line)
    assert len(starts) <= 2  # 60 typed characters move the start at most once, not on every keystroke


def test_an_enormous_cursor_line_is_cut_by_characters() -> None:
    prompt = build("qwen2.5-coder", "x" * 500, "y" * 500, budget=103)
    assert len(chars(prompt.text)) <= 103
    assert prompt.prefix_kept == "x" * len(prompt.prefix_kept) and len(prompt.prefix_kept) >= 70


def test_zero_budget_still_gives_a_valid_template() -> None:
    prompt = build("qwen2.5-coder", "abc", "def", budget=0)
    assert prompt.text == "<|fim_prefix|><|fim_suffix|><|fim_middle|>"


def test_trimming_needs_only_logarithmically_many_tokenize_calls() -> None:
    calls = 0

    def counting(text: str) -> list[int]:
        nonlocal calls
        calls += 1
        return chars(text)

    text = lines(4000, "l")
    kept = keep_tail(text, 700, counting)
    assert calls <= 20  # the HTTP backend pays a round trip for each
    assert len(kept) <= 700 and text.endswith(kept) and kept.startswith("l")
    assert keep_head(text, 700, chars) == lines(140, "l")  # 5 characters a line


def test_unknown_family_is_a_plain_completion_with_a_warning() -> None:
    prompt = build("unknown", lines(50, "a"), "suffix is dropped", budget=70)
    assert not prompt.fim and prompt.warning and "fill-in-the-middle" in prompt.warning
    assert prompt.text == prompt.prefix_kept and prompt.suffix_kept == ""
    assert lines(50, "a").endswith(prompt.text) and len(prompt.text) <= 70
    assert "<|endoftext|>" in prompt.stop


def test_works_with_the_fake_backends_word_tokenizer() -> None:
    backend = FakeBackend()
    source = "".join(f"  def f{i}(x), do: x + {i}\n" for i in range(200))
    prompt = completion_prompt(
        source, source, info=backend.info, tokenize=backend.tokenize, budget_tokens=300
    )
    assert prompt.fim and len(backend.tokenize(prompt.text)) <= 300 + 10
    assert prompt.prefix_kept.endswith("x + 199\n") and prompt.suffix_kept.startswith("  def f0(x)")


# -- a cursor on the indentation of its line ---------------------------------------------------------


@pytest.mark.parametrize("family", ["qwen2.5-coder", "unknown"])
def test_the_cursor_indentation_is_left_out_of_the_prompt(family: str) -> None:
    prompt = build(family, "def f do\n    ", "\nend\n")
    assert prompt.indent == "    "
    assert prompt.prefix_kept.endswith("def f do\n")
    assert "def f do\n    " not in prompt.text


def test_a_cursor_after_code_keeps_its_line_whole() -> None:
    prompt = build("qwen2.5-coder", "def f do\n    x = ", "\nend\n")
    assert prompt.indent == ""
    assert prompt.prefix_kept.endswith("    x = ")


def test_cursor_indent_and_dedent_answer() -> None:
    assert cursor_indent("a\n\t  ") == "\t  "
    assert cursor_indent("a\n  b") == "" and cursor_indent("a\n") == "" and cursor_indent("") == ""
    assert dedent_answer("    foo\n    bar", "    ") == "foo\n    bar"
    assert dedent_answer("      foo", "    ") == "  foo"
    assert dedent_answer("  foo", "    ") == "foo"
    assert dedent_answer("  foo", "") == "  foo"
