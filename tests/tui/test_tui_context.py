"""What the chat sends: file attachments, /explain and /doc prompts, folding and trimming the context."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui.context import (
    DEFAULT_SYSTEM_PROMPT,
    attachment_content,
    chat_messages,
    doc_prompt,
    enclosing_function,
    explain_prompt,
    fenced,
    fit_messages,
    function_span,
    parse_path_line,
    read_text_file,
)
from tui.errors import AttachError, InputTooLarge
from tui.history import StoredMessage


def test_read_text_file_refuses_missing_binary_huge_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(AttachError, match="no such file"):
        read_text_file(tmp_path / "nope.ex")
    with pytest.raises(AttachError, match="not a file"):
        read_text_file(tmp_path)
    (tmp_path / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    with pytest.raises(AttachError, match="binary"):
        read_text_file(tmp_path / "img.png")
    (tmp_path / "big.ex").write_text("x" * 2000)
    with pytest.raises(AttachError, match="larger than the 1 KB limit") as info:
        read_text_file(tmp_path / "big.ex", max_bytes=1024)
    assert info.value.hint  # says what to do instead
    (tmp_path / "latin1.ex").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(AttachError, match="not UTF-8"):
        read_text_file(tmp_path / "latin1.ex")
    (tmp_path / "ok.ex").write_text("défmodule")
    assert read_text_file(tmp_path / "ok.ex") == "défmodule"


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("lib/a.ex", ("lib/a.ex", None)),
        ("lib/a.ex:12", ("lib/a.ex", 12)),
        ("lib/a.ex:12:3", ("lib/a.ex", 12)),
        ("C:/x.ex:4", ("C:/x.ex", 4)),
    ],
)
def test_parse_path_line(arg: str, expected: tuple[str, int | None]) -> None:
    assert parse_path_line(arg) == expected


def test_fence_outgrows_backticks_inside() -> None:
    text = fenced("a\n```\nb", "elixir")
    assert text.startswith("````elixir\n") and text.endswith("\n````")


def test_enclosing_function_covers_all_clauses_and_spec(workdir: Path) -> None:
    source = (workdir / "lib/my_app/stack.ex").read_text()
    lines = source.splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "GenServer.cast" in text)
    span = enclosing_function(source, line)
    assert span is not None and span.label == "function push/2"
    assert lines[span.start - 1].strip().startswith("@spec push")
    assert lines[span.end - 1].strip() == "end"
    assert enclosing_function(source, 2) is None  # @moduledoc: inside no function


def test_explain_prompt_uses_the_function_or_a_window(workdir: Path) -> None:
    source = (workdir / "lib/my_app/stack.ex").read_text()
    prompt = explain_prompt("lib/my_app/stack.ex", source, 18)
    assert "function handle_cast/2" in prompt and "`MyApp.Stack`" in prompt
    assert "{:noreply, [item | items]}" in prompt and "def push" not in prompt
    whole = explain_prompt("lib/my_app/stack.ex", source, None)
    assert "Explain this Elixir file" in whole and "def push" in whole and "```elixir" in whole
    around = explain_prompt("lib/my_app/stack.ex", source, 2)
    assert "code around line 2" in around
    with pytest.raises(AttachError, match="no line 99"):
        explain_prompt("lib/my_app/stack.ex", source, 99)


def test_doc_prompt_finds_function_by_name_or_arity(workdir: Path) -> None:
    source = (workdir / "lib/my_app/stack.ex").read_text()
    prompt = doc_prompt("lib/my_app/stack.ex", source, "push/2")
    assert "`MyApp.Stack.push/2`" in prompt and "GenServer.cast" in prompt and "@doc" in prompt
    assert function_span(source, "start_link") is not None
    with pytest.raises(AttachError, match="no function `pop`"):
        doc_prompt("lib/my_app/stack.ex", source, "pop")


def _msg(role: str, content: str, status: str = "complete") -> StoredMessage:
    return StoredMessage(0, 1, role, content, status)


def test_chat_messages_fold_attachments_into_the_next_question() -> None:
    history = [
        _msg("context", attachment_content("lib/a.ex", "defmodule A do\nend")),
        _msg("user", "what does A do?"),
        _msg("assistant", "nothing", "interrupted"),
        _msg("assistant", "", "error"),
        _msg("user", "and B?"),
        _msg("context", "File `lib/b.ex`: ..."),
    ]
    out = chat_messages(None, history)
    assert out[0] == {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert out[1]["content"].startswith("File `lib/a.ex`:") and out[1]["content"].endswith("what does A do?")
    assert out[3]["content"].startswith("File `lib/b.ex`") and out[3]["content"].endswith("and B?")
    assert chat_messages("custom", [])[0]["content"] == "custom"


def test_fit_messages_drops_oldest_turns_and_refuses_a_message_too_large() -> None:
    def count(text: str) -> int:
        return len(text.split())

    messages = [{"role": "system", "content": "sys"}] + [
        {"role": "user" if i % 2 == 0 else "assistant", "content": " ".join(["w"] * 10)} for i in range(5)
    ]
    kept, used, dropped = fit_messages(messages, count, budget=45)
    # 5 + 5 * 14 tokens: dropping 3 turns leaves 33 <= 45; dropping 2 leaves 47.
    assert dropped == 3 and kept[0]["content"] == "sys" and len(kept) == 3 and used == 33
    kept, _, dropped = fit_messages(messages, count, budget=1000)
    assert dropped == 0 and kept == messages
    with pytest.raises(InputTooLarge, match="about 14 tokens"):
        fit_messages(messages, count, budget=10)
