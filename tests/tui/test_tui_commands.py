"""Slash-command parsing, code-block extraction, file names for saved blocks, Markdown export."""

from __future__ import annotations

import pytest

from tui.codeblocks import code_blocks, export_markdown, slug, suggested_filename
from tui.commands import COMMANDS, help_markdown, is_command, parse
from tui.errors import CommandError
from tui.history import Session, StoredMessage


def test_parse_commands_and_arguments() -> None:
    assert parse("/explain lib/a.ex:3").args == ["lib/a.ex:3"]
    assert parse("  /MODEL http://localhost:8080 qwen ").args == ["http://localhost:8080", "qwen"]
    assert parse("/file 'my dir/a.ex'").args == ["my dir/a.ex"]
    system = parse("/system You answer in haiku.  Always.")
    assert system.args == ["You answer in haiku.  Always."]
    assert parse("/clear").args == []


def test_unknown_command_suggests_the_closest() -> None:
    with pytest.raises(CommandError, match="unknown command /expalin") as info:
        parse("/expalin lib/a.ex")
    assert info.value.hint == "did you mean /explain?"
    with pytest.raises(CommandError) as info:
        parse("/zzzz")
    assert "/help" in info.value.user_message()


@pytest.mark.parametrize(
    "line", ["/file", "/file a b", "/clear now", "/doc", "/scaffold a b c d", "/file 'open"]
)
def test_wrong_arguments_name_the_usage(line: str) -> None:
    with pytest.raises(CommandError) as info:
        parse(line)
    assert "usage: /" in info.value.user_message()


def test_is_command() -> None:
    assert is_command("/help") and is_command("  /file x")
    assert not is_command("//etc/passwd is a path") and not is_command("/") and not is_command("hi /help")


def test_help_lists_every_command_and_key() -> None:
    text = help_markdown()
    for spec in COMMANDS.values():
        assert spec.usage in text
    assert "escape" in text and "ctrl+o" in text


def test_code_blocks_including_an_unclosed_fence() -> None:
    answer = "Try:\n\n```elixir\nx = 1\n```\n\nand\n\n```bash\nmix test\n```\n\n```elixir\ndefmodule Half do"
    blocks = code_blocks(answer)
    assert [(b.language, b.code) for b in blocks] == [
        ("elixir", "x = 1\n"),
        ("bash", "mix test\n"),
        ("elixir", "defmodule Half do"),
    ]
    assert code_blocks("no code here") == []


def test_suggested_filename() -> None:
    [module] = code_blocks("```elixir\ndefmodule MyApp.HTTPCache.Worker do\nend\n```")
    assert suggested_filename(module, 0) == "lib/my_app/http_cache/worker.ex"
    [snippet] = code_blocks("```bash\nmix test\n```")
    assert suggested_filename(snippet, 2) == "snippet-3.txt"


def test_export_markdown_marks_interrupted_and_failed() -> None:
    session = Session(3, "Stacks", 0.0, 0.0, system_prompt="be brief")
    messages = [
        StoredMessage(1, 3, "context", "File `lib/a.ex`:\n\n```elixir\nx\n```"),
        StoredMessage(2, 3, "user", "explain"),
        StoredMessage(3, 3, "assistant", "It is a", "interrupted"),
        StoredMessage(4, 3, "assistant", "", "error"),
    ]
    text = export_markdown(session, messages, model="fake")
    assert text.startswith("# Stacks\n") and "model fake" in text and "**System prompt:** be brief" in text
    assert "## Attached file" in text and "## You\n\nexplain" in text
    assert "## Potion (interrupted)\n\nIt is a" in text and "## Potion (failed)" in text
    assert slug("Hello, World!  GenServer?") == "hello-world-genserver"
