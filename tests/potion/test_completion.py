"""The shared completion pipeline: post-processing, the stop rule, streaming (no transport, no model)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from potion.backends import FakeBackend
from potion.backends.fake import fake_pieces
from potion.completion import (
    DEFAULT_SETTINGS,
    CompletionSettings,
    CompletionStream,
    CursorContext,
    build_prompt,
    cursor_context,
    line_depths,
    postprocess,
    shape,
    should_stop,
    suggest,
)
from potion.prompts import cursor_indent, dedent_answer


def ctx_at(document: str) -> CursorContext:
    """The context at the `|` in `document`."""
    prefix, suffix = document.split("|")
    return cursor_context(prefix, suffix)


BODY = "defmodule A do\n  def increment do\n    |\n  end\nend\n"


def test_block_stops_before_the_end_that_is_already_there():
    out = postprocess("GenServer.call(__MODULE__, :increment)\n  end\n\n  def more do", ctx_at(BODY))
    assert out == "GenServer.call(__MODULE__, :increment)"


def test_block_keeps_a_balanced_case_and_stops_after_it():
    raw = "case x do\n      :a -> 1\n      _ -> 2\n    end\n    other()\n  end"
    assert postprocess(raw, ctx_at(BODY)) == "case x do\n      :a -> 1\n      _ -> 2\n    end"


def test_block_stops_at_blank_line_after_statement():
    assert postprocess("a = 1\n    b = a + 1\n\n    c = 3", ctx_at(BODY)) == "a = 1\n    b = a + 1"


def test_block_from_end_of_do_line_closes_its_own_block():
    ctx = ctx_at("defmodule A do\n  def foo do|\nend\n")
    assert postprocess("\n    :ok\n  end\n\n  def bar do", ctx) == "\n    :ok\n  end"


def test_block_does_not_repeat_an_end_the_suffix_has():
    ctx = ctx_at("defmodule A do\n  def foo do|\n  end\nend\n")
    assert postprocess("\n    :ok\n  end\n", ctx) == "\n    :ok"


def test_keywords_in_strings_atoms_and_comments_do_not_count():
    assert line_depths('x = "do (" <> ~s(end) # do\nfoo(do: 1, x: :end)\nfn x -> x end') == [0, 0, 0]
    assert line_depths("def f do\n  [1,\n 2]\nend") == [1, 1, -1, -1]


def test_mid_line_is_single_line_and_drops_the_repeated_rest():
    ctx = ctx_at("  def f(a, |), do: a\n")
    assert ctx.mid_line
    assert postprocess("b), do: a\n  def g", ctx) == "b"


def test_mid_line_drops_closing_bracket_overlap():
    ctx = ctx_at("  foo(|bar)\n")
    assert postprocess("baz, bar)", ctx) == "baz,"


def test_closing_brackets_alone_are_not_mid_line():
    ctx = ctx_at("  foo(|)\n")
    assert not ctx.mid_line
    assert postprocess("a, b)", ctx) == "a, b"


def test_indentation_matched_to_cursor():
    # The cursor already sits at 4 spaces; the model indents its first line again.
    raw = "  if x do\n        y\n      end"
    assert postprocess(raw, ctx_at(BODY)) == "if x do\n      y\n    end"


def test_empty_and_whitespace_results_dropped():
    assert postprocess("", ctx_at(BODY)) == ""
    assert postprocess("   \n\n  ", ctx_at(BODY)) == ""
    assert postprocess("\n  end", ctx_at(BODY)) == ""


def test_dedent_out_of_cursor_block_stops():
    assert postprocess("x = 1\n  y = 2", ctx_at(BODY)) == "x = 1"


def test_crlf_output_normalised():
    assert postprocess("x = 1\r\n  end", ctx_at(BODY)) == "x = 1"


def test_should_stop_once_the_block_is_final():
    ctx = ctx_at(BODY)
    assert not should_stop("GenServer.call(", ctx)
    assert not should_stop("GenServer.call(x)\n", ctx)  # the next line may continue the block
    assert should_stop("GenServer.call(x)\n  end\n", ctx)
    mid = ctx_at("  foo(|bar)\n")
    assert should_stop("baz, \n", mid)


def test_cursor_context_of_huge_suffix_reads_only_a_few_lines():
    ctx = cursor_context("a", "b\n" + "line\n" * 1_000_000)
    assert ctx.line_suffix == "b" and len(ctx.next_lines) == 8


# -- streaming: what `potion complete` prints is what the editor shows ---------------------------------

AFTER_CALL = "defmodule A do\n  def increment do\n    |\n  end\n\n  @impl true\nend\n"


def stream_of(document: str, pieces: list[str], settings: CompletionSettings = DEFAULT_SETTINGS):
    prefix, suffix = document.split("|")
    stream = CompletionStream(cursor_context(prefix, suffix), indent=cursor_indent(prefix), settings=settings)
    shown = []
    for piece in pieces:
        if new := stream.feed(piece):
            shown.append(new)
        if stream.done:
            break
    if rest := stream.finish():
        shown.append(rest)
    return stream, shown


def test_stream_stops_where_the_model_repeats_the_suffix() -> None:
    stream, shown = stream_of(AFTER_CALL, ["    Gen", "Server.call(x)\n", "  e", "nd\n\n  @impl true\n"])
    assert "".join(shown) == stream.text == "GenServer.call(x)"
    assert shown[0] == "Gen"  # the first line streams as it comes
    assert stream.done  # generation stops there, before "@impl true"


def test_stream_keeps_lines_that_only_look_like_the_suffix_at_first() -> None:
    document = "defmodule A do\n  def f do\n    |\n  end\nend\n"
    stream, shown = stream_of(document, ["x = 1\n", "    en", "ding = 2\n", "  end\n"])
    assert "".join(shown) == stream.text == "x = 1\n    ending = 2"


def test_stream_shows_the_editors_text_piece_by_piece() -> None:
    # What is streamed is always a prefix of the final suggestion, which is postprocess() of the whole.
    raw = "case x do\n      :a -> 1\n      _ -> 2\n    end\n    other()\n  end"
    pieces = fake_pieces(raw)
    stream, shown = stream_of(BODY, pieces)
    assert "".join(shown) == stream.text == postprocess(raw, ctx_at(BODY))
    assert len(shown) > 3


def test_stream_mid_line_holds_back_what_may_repeat_the_line() -> None:
    stream, shown = stream_of("  foo(|bar)\n", ["baz", ", ", "bar", ")", "\n"])
    assert "".join(shown) == stream.text == "baz,"


def test_trim_none_passes_everything_through_and_single_keeps_one_line() -> None:
    none = CompletionSettings(trim="none")
    assert stream_of(AFTER_CALL, ["a\n", "  end\n"], none)[0].text == "a\n  end"
    single = CompletionSettings(lines="single")
    assert stream_of("defmodule A do\n  def f do|\nend\n", ["\n    :ok\n", "  end\n"], single)[0].text == (
        "\n    :ok"
    )


def test_suffix_trim_cuts_only_at_the_repeated_line() -> None:
    settings = CompletionSettings(trim="suffix")
    stream, _ = stream_of(AFTER_CALL, ["x = 1\n", "\n", "y = 2\n", "  end\n", "more\n"], settings)
    assert stream.text == "x = 1\n\ny = 2" and stream.done


def test_finish_after_a_time_budget_drops_the_unfinished_line() -> None:
    prefix, suffix = BODY.split("|")
    stream = CompletionStream(cursor_context(prefix, suffix), indent="    ")
    shown = stream.feed("    if x do\n      y\n      fo")
    shown += stream.finish(drop_partial_line=True)
    assert shown == stream.text == "if x do\n      y"


@given(
    st.lists(
        st.sampled_from(["x", " ", "\n", "do", "end", "(", ")", '"', "  ", "\n\n", ":a", "->"]), max_size=30
    )
)
def test_streamed_text_is_always_a_prefix_of_the_suggestion(parts: list[str]) -> None:
    stream, shown = stream_of(BODY, parts)
    assert "".join(shown) == stream.text
    prefix, suffix = BODY.split("|")
    assert stream.text == shape(dedent_answer(stream.raw, "    "), cursor_context(prefix, suffix))


def test_generate_with_a_fake_backend_and_budget_from_settings() -> None:
    backend = FakeBackend(["    GenServer.call(x)\n  end\n\n  @impl true\n"])
    prefix, suffix = AFTER_CALL.split("|")
    result = suggest(backend, prefix, suffix, settings=CompletionSettings(prompt_tokens=256), path="/p/a.ex")
    assert result.text == "GenServer.call(x)"
    assert backend.prompts[0].startswith("<|file_sep|>/p/a.ex\n")
    no_header = suggest(backend, prefix, suffix, settings=CompletionSettings(path_header=False))
    assert no_header.prompt.text.startswith("<|fim_prefix|>") and no_header.text == "GenServer.call(x)"
    kept = build_prompt(
        prefix,
        suffix,
        info=backend.info,
        tokenize=backend.tokenize,
        settings=CompletionSettings(strip_indent=False),
    )
    assert kept.indent == "" and "<|fim_prefix|>" in kept.text and "    <|fim_suffix|>" in kept.text


def test_indent_healing_asks_the_backend_for_the_left_out_indentation() -> None:
    backend = FakeBackend(["    GenServer.call(x)\n  end\n"] * 3)
    prefix, suffix = AFTER_CALL.split("|")
    heal = CompletionSettings(heal_indent=True)
    healed = suggest(backend, prefix, suffix, settings=heal)
    assert healed.prompt.indent == "    " and healed.prompt.heal_indent and healed.text == "GenServer.call(x)"
    free = suggest(backend, prefix, suffix)  # the default: measured, not confirmed held out
    kept = suggest(backend, prefix, suffix, settings=CompletionSettings(strip_indent=False, heal_indent=True))
    assert kept.prompt.indent == "" and not kept.prompt.heal_indent
    assert free.prompt.text == healed.prompt.text and not free.prompt.heal_indent
    assert backend.indents == ["    ", "", ""]  # a kept indentation has nothing to heal
    mid_line = suggest(backend, "x = ", "\n", settings=heal)
    assert mid_line.prompt.forced_indent == "" and backend.indents[-1] == ""


def test_indent_grammar_is_whitespace_only() -> None:
    from potion.backends.base import indent_grammar

    assert indent_grammar("\t ") == 'root ::= "\\t " [^ \\t\\r\\n] [^\\x00]*'
    with pytest.raises(ValueError, match="spaces and tabs"):
        indent_grammar("  x")


def test_interpolation_and_map_braces_balance() -> None:
    # "#{" opens what its "}" closes: a suggestion with interpolation is not cut as if it closed a block.
    assert line_depths('x = "a#{f(1)}b"\nm = %{a: 1,\n  b: 2}') == [0, 1, -1]
    out = postprocess('y = "#{x}"\n    z = y', ctx_at(BODY))
    assert out == 'y = "#{x}"\n    z = y'


def test_suffix_share_moves_the_budget_to_the_suffix() -> None:
    backend = FakeBackend()
    prefix, suffix = "a = 1\n" * 400, "\nb = 2" * 400
    small = build_prompt(prefix, suffix, info=backend.info, tokenize=backend.tokenize)
    large = build_prompt(
        prefix,
        suffix,
        info=backend.info,
        tokenize=backend.tokenize,
        settings=CompletionSettings(suffix_share=0.5),
    )
    assert len(large.suffix_kept) > 2 * len(small.suffix_kept)
    assert len(large.prefix_kept) < len(small.prefix_kept)


def test_smart_lines_give_a_block_only_where_a_body_starts() -> None:
    smart = CompletionSettings(lines="smart")
    raw = ["x = 1\n", "    y = 2\n", "  end\n"]
    # between two statements: one line
    between = "defmodule A do\n  def f do\n    a = 0\n    |\n    b = 1\n  end\nend\n"
    assert stream_of(between, raw, smart)[0].text == "x = 1"
    # an empty body: the block
    empty = "defmodule A do\n  def f do\n    |\n  end\nend\n"
    assert stream_of(empty, raw, smart)[0].text == "x = 1\n    y = 2"
    # the end of a `do` line: the block
    after_do = "defmodule A do\n  def f do|\n  end\nend\n"
    pieces = ["\n    :ok\n", "    :more\n", "  end\n"]
    assert stream_of(after_do, pieces, smart)[0].text == "\n    :ok\n    :more"
