"""`potion chat`: argument checks, `--once` streaming to stdout, and a light `potion --help`."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

import potion.backends
from potion.backends import FakeBackend
from potion.cli import main
from potion.errors import ModelNotFound
from tui.cli import ChatArgs
from tui.once import answer_once


def test_once_prints_the_streamed_answer(monkeypatch: pytest.MonkeyPatch, capsys, potion_home) -> None:
    backend = FakeBackend("Use `Enum.map/2`.")
    opened: list[tuple] = []

    def open_backend(model=None, *, url=None, n_ctx=4096):
        opened.append((model, url, n_ctx))
        return backend

    monkeypatch.setattr(potion.backends, "open_backend", open_backend)
    assert main(["chat", "--once", "map a list?", "--model", "tiny", "--n-ctx", "2048"]) == 0
    assert capsys.readouterr().out == "Use `Enum.map/2`.\n"
    assert opened == [("tiny", None, 2048)]
    assert backend.chats[0][-1] == {"role": "user", "content": "map a list?"}
    assert not backend.loaded  # closed afterwards


def test_once_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys, potion_home) -> None:
    backend = FakeBackend("ok")
    monkeypatch.setattr(potion.backends, "open_backend", lambda model=None, **kw: backend)
    monkeypatch.setattr(sys, "stdin", io.StringIO("from stdin"))
    assert main(["chat", "--once", "-", "--system", "terse"]) == 0
    assert backend.chats[0] == [
        {"role": "system", "content": "terse"},
        {"role": "user", "content": "from stdin"},
    ]


def test_missing_model_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys, potion_home) -> None:
    def open_backend(model=None, **kw):
        raise ModelNotFound(f"no model named {model!r}", hint="see potion models list")

    monkeypatch.setattr(potion.backends, "open_backend", open_backend)
    assert main(["chat", "--once", "hi", "--model", "nope"]) == 1
    err = capsys.readouterr().err
    assert err == "potion: error: no model named 'nope' (see potion models list)\n"


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--max-tokens", "0"], "--max-tokens"),
        (["--n-ctx", "10"], "--n-ctx"),
        (["--max-tokens", "5000"], "--max-tokens"),
        (["--once", "  "], "--once"),
    ],
)
def test_bad_flags_name_the_flag(argv: list[str], flag: str, capsys, potion_home) -> None:
    assert main(["chat", *argv]) == 2
    assert flag in capsys.readouterr().err


def test_chat_flags_and_defaults_come_from_chat_args() -> None:
    from potion.cli import build_parser
    from potion.cli_args import from_namespace

    parser = build_parser()
    args = from_namespace(ChatArgs, parser.parse_args(["chat"]))
    assert args == ChatArgs() and (args.max_tokens, args.n_ctx, args.once) == (768, 4096, None)
    given = from_namespace(ChatArgs, parser.parse_args(["chat", "--max-tokens", "99", "--once", "q"]))
    assert (given.max_tokens, given.once, given.n_ctx) == (99, "q", 4096)


def test_answer_once_refuses_a_question_too_large() -> None:
    from tui.errors import InputTooLarge

    with pytest.raises(InputTooLarge):
        answer_once(FakeBackend("x"), "word " * 5000, max_tokens=512, out=io.StringIO())


def test_potion_help_lists_chat_without_importing_textual() -> None:
    code = (
        "import sys; from potion.cli import build_parser; build_parser(); "
        "print('textual' in sys.modules, 'tui.app' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr
    help_text = subprocess.run(
        [sys.executable, "-m", "potion.cli", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    assert "chat" in help_text


def test_once_saves_the_question_and_answer_to_the_history(
    monkeypatch: pytest.MonkeyPatch, capsys, potion_home
) -> None:
    from tui.history import HistoryStore, default_path

    monkeypatch.setattr(
        potion.backends, "open_backend", lambda model=None, **kw: FakeBackend("Use `Enum.map/2`.")
    )
    assert main(["chat", "--once", "map   a list?", "--system", "terse"]) == 0
    assert main(["chat", "--once", "second question"]) == 0
    assert capsys.readouterr().err == ""
    store = HistoryStore.open(default_path())
    first, second = reversed(store.sessions())
    assert (first.title, first.system_prompt, first.model) == ("map a list?", "terse", "fake")
    assert [(m.role, m.content, m.status) for m in store.messages(first.id)] == [
        ("user", "map   a list?", "complete"),
        ("assistant", "Use `Enum.map/2`.", "complete"),
    ]
    assert second.title == "second question"


def test_once_with_no_history_saves_nothing(monkeypatch: pytest.MonkeyPatch, capsys, potion_home) -> None:
    from tui.history import default_path

    monkeypatch.setattr(potion.backends, "open_backend", lambda model=None, **kw: FakeBackend("ok"))
    assert main(["chat", "--once", "private", "--no-history"]) == 0
    assert capsys.readouterr().out == "ok\n" and not default_path().exists()


def test_once_saves_a_failed_answer_as_an_error(monkeypatch: pytest.MonkeyPatch, capsys, potion_home) -> None:
    from tui.history import HistoryStore, default_path

    backend = FakeBackend("partial answer then a drop", fail_after=2)
    monkeypatch.setattr(potion.backends, "open_backend", lambda model=None, **kw: backend)
    assert main(["chat", "--once", "will fail"]) == 1
    store = HistoryStore.open(default_path())
    [session] = store.sessions()
    user, answer = store.messages(session.id)
    assert user.content == "will fail" and answer.status == "error" and answer.meta["error"]


def test_once_still_answers_when_the_history_cannot_be_opened(
    monkeypatch: pytest.MonkeyPatch, capsys, potion_home
) -> None:
    from tui.history import default_path

    default_path().parent.mkdir(parents=True, exist_ok=True)
    default_path().mkdir()  # a directory where the database should be
    monkeypatch.setattr(
        potion.backends, "open_backend", lambda model=None, **kw: FakeBackend("still answered")
    )
    assert main(["chat", "--once", "q"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "still answered\n"
    assert len(captured.err.strip().splitlines()) == 1 and "not saved to the history" in captured.err
