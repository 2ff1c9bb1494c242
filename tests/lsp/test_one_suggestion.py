"""One raw model answer, one suggestion: `potion complete`, the language server's inline completion and
`potion.completion.suggest` show the same text for the same cursor, all three against one scripted
OpenAI-compatible server (so they also send it the same prompt).

The expected texts follow the rules of `potion.completion` (its module docstring, `postprocess`, `shape`
with the default "editor" trim and "smart" lines); each case says which rule cuts the raw answer where.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from lsp_helpers import lsp_session, open_doc, vscode_capabilities, wait_ready
from lsprotocol import types

from potion import completion
from potion.backends import OpenAIBackend
from potion.backends.fake import fake_pieces
from potion.cli import main

sys.path.append(str(Path(__file__).resolve().parent.parent / "potion"))  # fakes_openai
from fakes_openai import FakeOpenAIServer  # noqa: E402

pytestmark = pytest.mark.timeout(60)

CURSOR = "‸"  # marks the cursor in a case's source; not in any source


@dataclass(frozen=True)
class Case:
    name: str
    source: str  # with CURSOR where the cursor is
    raw: str  # what the model writes at the cursor
    expected: str  # the suggestion, by the documented rules


CASES = [
    # Mid-line (real code, `end)`, follows the cursor): one line, cut where it repeats the line's rest.
    Case(
        "mid-line",
        "defmodule Shop.Cart do\n  def count(items) do\n"
        "    Enum.reduce(items, 0, fn item, acc -> ‸end)\n  end\nend\n",
        "acc + item.qty end)\n  end\nend\n",
        "acc + item.qty",
    ),
    # Cursor after `do` at the end of its line: the suggestion closes the block the line opens, so it
    # keeps the body and stops before the `end` that repeats the line after the cursor. The body starts on
    # the next line, so the suggestion starts with a newline; the model's indentation is kept.
    Case(
        "empty body after do",
        "defmodule Shop.Cart do\n  def add(cart, item) do‸\n  end\n\n"
        "  def size(cart), do: length(cart.items)\nend\n",
        "\n    items = [item | cart.items]\n    %{cart | items: items}\n  end\n\n  def other do\n",
        "\n    items = [item | cart.items]\n    %{cart | items: items}",
    ),
    # A blank line between two statements, the cursor on its indentation: the indentation is the
    # document's (dropped from the answer), and among existing code "smart" keeps one line of code.
    Case(
        "blank line between statements",
        "defmodule Shop.Cart do\n  def count(items) do\n    first = length(items)\n    ‸\n"
        "    first + 0\n  end\nend\n",
        "    doubled = first * 2\n    tripled = first * 3\n    first + 0\n  end\n",
        "doubled = first * 2",
    ),
    # The empty body of a function, the cursor on its indentation: a block is wanted; the model writes
    # the body, then runs on into the suffix (`end`, the next function): cut where it repeats `  end`.
    # Later lines keep their indentation relative to the document.
    Case(
        "answer runs into the suffix",
        "defmodule Shop.Cart do\n  def add(cart, item) do\n    ‸\n  end\n\n"
        "  def size(cart), do: length(cart.items)\nend\n",
        "    items = [item | cart.items]\n    %{cart | items: items}\n  end\n\n"
        "  def size(cart), do: length(cart.items)\nend\n",
        "items = [item | cart.items]\n    %{cart | items: items}",
    ),
    # Only a closing bracket after the cursor (not mid-line): one balanced line, without the `)` the
    # line already has (it would be doubled).
    Case(
        "closing bracket after the cursor",
        "defmodule Shop.Cart do\n  def qtys(items) do\n    Enum.map(items, ‸)\n  end\nend\n",
        "fn item -> item.qty end)\n  end\nend\n",
        "fn item -> item.qty end",
    ),
]


def cursor_of(source: str) -> tuple[str, str, int, int]:
    """The text without the marker, the text before and after the cursor, and its 0-based line and
    column (ASCII sources: characters are UTF-16 units)."""
    prefix, suffix = source.split(CURSOR)
    line = prefix.count("\n")
    return prefix, suffix, line, len(prefix) - (prefix.rfind("\n") + 1)


def prompts(server: FakeOpenAIServer) -> list[str]:
    return [body["prompt"] for body in server.bodies("/v1/completions")]


async def test_complete_cli_language_server_and_pipeline_show_the_same_text(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POTION_HOME", str(home))  # `potion complete` runs in this process
    # extraContextChars 0: the other cases' open documents stay out of the server's prompt, as they are
    # out of `potion complete`'s (it completes one file).
    options = {"debounceMs": 0, "extraContextChars": 0}
    with FakeOpenAIServer(model_id="qwen2.5-coder-1.5b") as server:
        options["backendUrl"] = server.url
        async with lsp_session(home, capabilities=vscode_capabilities(), options=options) as client:
            await wait_ready(client)
            for case in CASES:
                prefix, suffix, line, col = cursor_of(case.source)
                path = (tmp_path / f"{case.name.replace(' ', '_')}.ex").resolve()
                path.write_text(prefix + suffix, encoding="utf-8")
                server.pieces = fake_pieces(case.raw)  # streamed word by word, as a model would
                before = len(prompts(server))

                assert (
                    main(
                        ["complete", str(path), "--line", str(line + 1), "--col", str(col + 1)]
                        + ["--url", server.url]
                    )
                    == 0
                )
                cli = capsys.readouterr().out

                open_doc(client, path.as_uri(), prefix + suffix)
                result = await client.text_document_inline_completion_async(
                    types.InlineCompletionParams(
                        text_document=types.TextDocumentIdentifier(uri=path.as_uri()),
                        position=types.Position(line=line, character=col),
                        context=types.InlineCompletionContext(
                            trigger_kind=types.InlineCompletionTriggerKind.Invoked
                        ),
                    )
                )
                lsp = [item.insert_text for item in result.items]

                backend = OpenAIBackend(server.url)
                try:
                    pipeline = completion.suggest(backend, prefix, suffix, path=str(path)).text
                finally:
                    backend.close()

                assert (cli, lsp, pipeline) == (case.expected, [case.expected], case.expected), case.name
                sent = prompts(server)[before:]
                assert len(sent) == 3 and sent[0] == sent[1] == sent[2], case.name  # one prompt, three times
                # The whole file fits the budget; a cursor's indentation is left to the model.
                line_start = prefix[prefix.rfind("\n") + 1 :]
                kept = prefix[: len(prefix) - len(line_start)] if not line_start.strip() else prefix
                assert sent[0] == (
                    f"<|file_sep|>{path}\n<|fim_prefix|>{kept}<|fim_suffix|>{suffix}<|fim_middle|>"
                ), case.name
