"""Post-processing of raw model output into suggestions (no transport, no model)."""

from __future__ import annotations

from lsp.postprocess import CursorContext, cursor_context, line_depths, postprocess, should_stop


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
