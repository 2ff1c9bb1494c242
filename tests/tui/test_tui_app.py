"""Pilot tests of the chat app with FakeBackend: streaming, cancel, failures, history, keys, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual import events

from potion.backends import FakeBackend, ModelInfo
from potion.errors import BackendError
from tui.app import PotionChat
from tui.history import HistoryStore, default_path
from tui.screens.dialogs import AskScreen, ConfirmScreen, HelpScreen
from tui.widgets.conversation import MessageView

ANSWER = (
    "Keep state in a `GenServer`:\n\n```elixir\ndefmodule Counter do\n  use GenServer\nend\n```\n\n"
    "Then start it:\n\n```elixir\n{:ok, pid} = Counter.start_link([])\n```\n"
)
LONG = " ".join(f"word{i}" for i in range(400))


def fake(responses=ANSWER, **kwargs) -> FakeBackend:
    return FakeBackend(responses, info=ModelInfo(name="fake-coder", n_ctx=4096), **kwargs)


@pytest.fixture
def make_app(potion_home: Path, workdir: Path):
    def make(backend: FakeBackend | None = None, **kwargs) -> PotionChat:
        if backend is None and "backend_factory" not in kwargs:
            backend = fake()
        return PotionChat(backend, workdir=workdir, **kwargs)

    return make


async def ready(pilot, wait_for) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: not app.loading and app.screen.query("PromptInput"), what="model loaded")


async def say(pilot, wait_for, text: str, *, finish: bool = True) -> None:
    prompt = pilot.app.chat_screen.prompt
    prompt.load_text(text)
    prompt.focus()
    await pilot.press("enter")
    if finish:
        await wait_for(pilot, lambda: not pilot.app.chat_screen.generating, what="answer finished")


def views(app: PotionChat) -> list[MessageView]:
    return app.chat_screen.conversation.messages()


def errors(app: PotionChat) -> list[str]:
    return [text for severity, text in app.notices if severity == "error"]


def stored(app: PotionChat) -> list[tuple[str, str, str]]:
    store = app.store
    return [(m.role, m.status, m.content) for s in store.sessions() for m in store.messages(s.id)]


# -- streaming and history ------------------------------------------------------------------------------


async def test_question_streams_renders_elixir_and_is_saved(make_app, wait_for) -> None:
    backend = fake()
    app = make_app(backend)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, wait_for)
        await say(pilot, wait_for, "How do I keep state?")
        user, answer = views(app)
        assert (user.role, user.content) == ("user", "How do I keep state?")
        assert answer.content == ANSWER and answer.status == "complete"
        fences = list(answer.query("MarkdownFence"))
        assert [f.lexer for f in fences] == ["elixir", "elixir"]
        assert backend.chats[0][0]["role"] == "system" and "Elixir" in backend.chats[0][0]["content"]
        assert backend.chats[0][-1] == {"role": "user", "content": "How do I keep state?"}
        assert stored(app) == [
            ("user", "complete", "How do I keep state?"),
            ("assistant", "complete", ANSWER),
        ]
        status = app.screen.status
        assert status.model == "fake-coder" and status.context_size == 4096 and status.context_used > 0
        assert status.tokens_per_s > 0 and "tok/s" in str(status.render())
        assert app.screen.prompt.text == ""
        assert app.store.sessions()[0].title == "How do I keep state?"
        assert app.store.sessions()[0].model == "fake-coder"  # which model answered this chat


async def test_question_is_saved_before_the_model_answers(make_app, wait_for) -> None:
    seen: list[list[tuple[str, str, str]]] = []
    app: PotionChat | None = None

    def answer(prompt: str) -> str:
        seen.append(stored(app))  # runs when the backend starts generating
        return "ok"

    app = make_app(fake([answer]))
    async with app.run_test() as pilot:
        await ready(pilot, wait_for)
        await say(pilot, wait_for, "first")
    assert seen == [[("user", "complete", "first")]]


async def test_escape_cancels_and_keeps_the_partial_answer(make_app, wait_for) -> None:
    backend = fake(LONG, token_delay=0.005)
    app = make_app(backend)
    async with app.run_test() as pilot:
        await ready(pilot, wait_for)
        await say(pilot, wait_for, "talk", finish=False)
        await wait_for(pilot, lambda: app.screen.displayed_tokens >= 5, what="some tokens shown")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.screen.generating, what="cancelled")
        answer = views(app)[-1]
        assert answer.status == "interrupted" and answer.has_class("-interrupted")
        assert "interrupted" in str(answer.border_subtitle)
        assert backend.last_stats.cancelled
        role, status, content = stored(app)[-1]
        assert (role, status) == ("assistant", "interrupted")
        assert content and LONG.startswith(content) and len(content) < len(LONG)
        assert app.screen.status.state == "interrupted"
        # Escape with nothing streaming is not swallowed by the stop binding.
        await pilot.press("escape")
        assert not app.screen.generating


async def test_backend_failure_mid_stream_is_shown_and_saved(make_app, wait_for) -> None:
    backend = fake(LONG, fail_after=4)
    app = make_app(backend)
    async with app.run_test() as pilot:
        await ready(pilot, wait_for)
        await say(pilot, wait_for, "go")
        answer = views(app)[-1]
        assert answer.status == "error" and answer.has_class("-failed")
        assert "dropped the connection" in answer.content
        assert any("dropped the connection" in e for e in errors(app))
        session = app.store.sessions()[0]
        last = app.store.messages(session.id)[-1]
        assert last.status == "error" and "dropped" in last.meta["error"] and last.content
        backend.fail_after = None  # the chat keeps working after a failure
        await say(pilot, wait_for, "again")
        assert views(app)[-1].status == "complete"


async def test_history_is_restored_when_the_app_reopens(make_app, wait_for) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await ready(pilot, wait_for)
        await say(pilot, wait_for, "remember me")
    again = make_app()
    async with again.run_test() as pilot:
        await ready(pilot, wait_for)
        assert [(v.role, v.content) for v in views(again)] == [("user", "remember me"), ("assistant", ANSWER)]
        assert again.screen.session.title == "remember me"


async def test_quit_mid_answer_saves_it_as_interrupted(make_app, wait_for) -> None:
    app = make_app(fake(LONG, token_delay=0.005))
    async with app.run_test() as pilot:
        await ready(pilot, wait_for)
        await say(pilot, wait_for, "talk", finish=False)
        await wait_for(pilot, lambda: app.screen.displayed_tokens >= 3, what="tokens")
        await pilot.press("ctrl+q")
    store = HistoryStore.open(default_path())
    messages = store.messages(store.sessions()[0].id)
    assert [(m.role, m.status) for m in messages] == [("user", "complete"), ("assistant", "interrupted")]
    assert messages[1].content and LONG.startswith(messages[1].content)


async def test_unanswered_question_after_a_crash_is_marked(make_app, wait_for, potion_home) -> None:
    store = HistoryStore.open(default_path())
    store.add_message(store.new_session("crashed").id, "user", "what is OTP?")
    store.close()
    app = make_app()
    async with app.run_test() as pilot:
        await ready(pilot, wait_for)
        user, info = views(app)
        assert (
            user.content == "what is OTP?" and info.role == "info" and "No answer was saved" in info.content
        )
        await say(pilot, wait_for, "what is OTP?")
        assert [v.role for v in views(app)] == ["user", "user", "assistant"]  # the note is gone


# -- the model -----------------------------------------------------------------------------------------


async def test_model_that_fails_to_load_leaves_history_usable(make_app, wait_for) -> None:
    store = HistoryStore.open(default_path())
    store.add_message(store.new_session("old chat").id, "user", "kept")
    store.close()
    app = make_app(fake(load_error=BackendError("not a GGUF file", hint="run potion models verify")))
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: not app.loading, what="load attempt")
        assert "load failed" in app.screen.status.state
        assert any("not a GGUF file" in e for e in errors(app))
        assert [v.content for v in views(app)][0] == "kept"
        await say(pilot, wait_for, "hello?")
        assert app.screen.prompt.text == "hello?"  # nothing lost
        assert any("No model" in e for e in errors(app))
        assert stored(app) == [("user", "complete", "kept")]


async def test_model_command_switches_lists_and_survives_a_bad_model(make_app, wait_for) -> None:
    calls: list[tuple[str | None, str | None]] = []

    def factory(model: str | None, url: str | None) -> FakeBackend:
        calls.append((model, url))
        if model == "broken":
            return fake(load_error=BackendError("cannot load broken"))
        return FakeBackend(f"from {model or url}", info=ModelInfo(name=model or url or "default", n_ctx=2048))

    app = make_app(backend_factory=factory)
    async with app.run_test() as pilot:
        await ready(pilot, wait_for)
        assert app.screen.status.model == "default"
        await say(pilot, wait_for, "/model other")
        await wait_for(pilot, lambda: app.model_name == "other", what="switched")
        assert app.screen.status.context_size == 2048
        await say(pilot, wait_for, "hi")
        assert views(app)[-1].content == "from other"
        assert app.store.sessions()[0].model == "other"
        await say(pilot, wait_for, "/model broken")
        await wait_for(pilot, lambda: any("cannot load broken" in e for e in errors(app)), what="error")
        assert app.model_name == "other" and app.backend is not None  # still usable
        await say(pilot, wait_for, "/model http://127.0.0.1:9/v1 qwen")
        await wait_for(pilot, lambda: calls[-1] == ("qwen", "http://127.0.0.1:9/v1"), what="url")
        await say(pilot, wait_for, "/model")
        info = views(app)[-1]
        assert info.role == "info" and "qwen2.5-coder-0.5b" in info.content


# -- slash commands ------------------------------------------------------------------------------------


async def test_system_command_sets_the_prompt_of_this_chat(make_app, wait_for) -> None:
    backend = fake("ok")
    app = make_app(backend)
    async with app.run_test() as pilot:
        await ready(pilot, wait_for)
        await say(pilot, wait_for, "/system Answer in one line.")
        await say(pilot, wait_for, "q1")
        assert backend.chats[-1][0] == {"role": "system", "content": "Answer in one line."}
        assert app.store.sessions()[0].system_prompt == "Answer in one line."
        await say(pilot, wait_for, "/system")
        assert "Answer in one line." in views(app)[-1].content
        await say(pilot, wait_for, "/system -")
        await say(pilot, wait_for, "q2")
        assert "Potion" in backend.chats[-1][0]["content"]


async def test_file_command_attaches_with_token_count(make_app, wait_for, workdir) -> None:
    backend = fake("It is a stack.")
    app = make_app(backend)
    async with app.run_test() as pilot:
        await ready(pilot, wait_for)
        await say(pilot, wait_for, "/file lib/my_app/stack.ex")
        attached = views(app)[-1]
        assert (
            attached.role == "context"
            and "lib/my_app/stack.ex" in attached.note
            and "tokens" in attached.note
        )
        await say(pilot, wait_for, "what is this?")
        sent = backend.chats[-1][-1]["content"]
        assert "defmodule MyApp.Stack" in sent and sent.endswith("what is this?")
        assert [r for r, _, _ in stored(app)] == ["context", "user", "assistant"]


@pytest.mark.parametrize(
    ("setup", "arg", "message"),
    [
        (None, "lib/missing.ex", "no such file"),
        (lambda d: (d / "logo.png").write_bytes(b"\x89PNG\0\0\0\0"), "logo.png", "binary"),
        (lambda d: (d / "huge.ex").write_text("x = 1\n" * 60_000), "huge.ex", "KB limit"),
        (lambda d: (d / "many.ex").write_text("x = 1\n" * 20_000), "many.ex", "tokens; attachments may use"),
    ],
)
async def test_file_command_refuses_bad_files(make_app, wait_for, workdir, setup, arg, message) -> None:
    if setup:
        setup(workdir)
    app = make_app()
    async with app.run_test() as pilot:
        await ready(pilot, wait_for)
        await say(pilot, wait_for, f"/file {arg}")
        assert any(message in e for e in errors(app)), errors(app)
        assert app.screen.prompt.text == f"/file {arg}"  # kept so it can be fixed
        assert stored(app) == []


async def test_explain_and_doc_send_the_function(make_app, wait_for) -> None:
    backend = fake("explained")
    app = make_app(backend)
    async with app.run_test() as pilot:
        await ready(pilot, wait_for)
        await say(pilot, wait_for, "/explain lib/my_app/stack.ex:18")
        sent = backend.chats[-1][-1]["content"]
        assert "handle_cast/2" in sent and "[item | items]" in sent and "def push" not in sent
        await say(pilot, wait_for, "/doc lib/my_app/stack.ex:push/2")
        sent = backend.chats[-1][-1]["content"]
        assert "@doc" in sent and "GenServer.cast(pid, {:push, item})" in sent
        await say(pilot, wait_for, "/doc lib/my_app/stack.ex:pop")
        assert any("no function `pop`" in e for e in errors(app))
        await say(pilot, wait_for, "/explain lib/my_app/stack.ex:500")
        assert any("no line 500" in e for e in errors(app))


async def test_scaffold_previews_writes_and_never_overwrites_without_asking(
    make_app, wait_for, workdir
) -> None:
    app = make_app()
    target = workdir / "lib/my_app/cache.ex"
    async with app.run_test(size=(100, 40)) as pilot:
        await ready(pilot, wait_for)
        await say(pilot, wait_for, "/scaffold GenServer MyApp.Cache")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="preview")
        assert "defmodule MyApp.Cache" in app.screen.preview
        await pilot.press("y")
        await wait_for(pilot, target.exists, what="written")
        assert "use GenServer" in target.read_text()

        target.write_text("# mine\n")
        await say(pilot, wait_for, "/scaffold genserver MyApp.Cache")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="preview")
        await pilot.press("y")
        await wait_for(pilot, lambda: "Overwrite" in getattr(app.screen, "question", ""), what="overwrite?")
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen), what="closed")
        assert target.read_text() == "# mine\n"

        await say(pilot, wait_for, "/scaffold dynamic_supervisor MyApp.Pool lib/pool.ex")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="preview")
        await pilot.press("n")
        assert not (workdir / "lib/pool.ex").exists()

        await say(pilot, wait_for, "/scaffold Blorp MyApp.X")
        assert any("no scaffold for Blorp" in e for e in errors(app))
        await say(pilot, wait_for, "/scaffold GenServer not_a_module")
        assert any("invalid module name" in e for e in errors(app))
        await say(pilot, wait_for, "/scaffold")
        assert "genstage_producer" in views(app)[-1].content


async def test_clear_export_and_help(make_app, wait_for, workdir) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await ready(pilot, wait_for)
        await say(pilot, wait_for, "/export")
        assert any("nothing to export" in e for e in errors(app))
        await say(pilot, wait_for, "explain supervisors")
        await say(pilot, wait_for, "/export notes/chat.md")
        text = (workdir / "notes/chat.md").read_text()
        assert (
            "# explain supervisors" in text
            and "## You\n\nexplain supervisors" in text
            and "defmodule Counter" in text
        )
        (workdir / "notes/chat.md").write_text("keep")
        await say(pilot, wait_for, "/export notes/chat.md")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="overwrite?")
        await pilot.press("n")
        assert (workdir / "notes/chat.md").read_text() == "keep"

        await say(pilot, wait_for, "/help")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")

        await say(pilot, wait_for, "/clear")
        assert stored(app) == [] and views(app) == [] and app.screen.query("#welcome")


async def test_unknown_command_and_slash_escape(make_app, wait_for) -> None:
    backend = fake("ok")
    app = make_app(backend)
    async with app.run_test() as pilot:
        await ready(pilot, wait_for)
        await say(pilot, wait_for, "/expalin lib/a.ex")
        assert any("unknown command /expalin (did you mean /explain?)" in e for e in errors(app))
        assert app.screen.prompt.text == "/expalin lib/a.ex"
        await say(pilot, wait_for, "//etc/hosts is a file")
        assert backend.chats[-1][-1]["content"] == "/etc/hosts is a file"


# -- keys ----------------------------------------------------------------------------------------------


async def test_session_keys_new_rename_search_select_delete(make_app, wait_for) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, wait_for)
        screen = app.screen
        await say(pilot, wait_for, "about GenServer")
        first = screen.session.id
        await pilot.press("ctrl+n")
        assert screen.session is None and screen.query("#welcome")
        await say(pilot, wait_for, "about Ecto")
        assert len(app.store.sessions()) == 2

        await pilot.press("f2")
        assert isinstance(app.screen, AskScreen)
        app.screen.query_one("Input").value = "Ecto notes"
        await pilot.press("enter")
        assert app.store.session(screen.session.id).title == "Ecto notes"

        await pilot.press("ctrl+f")
        assert app.focused.id == "session-search"
        await pilot.press(*"about gen")  # the answers mention GenServer in both chats
        options = screen.query_one("#sessions")
        await wait_for(pilot, lambda: options.option_count == 1, what="filtered")
        await pilot.press("enter")  # jump into the list
        await pilot.press("enter")  # open the highlighted chat
        await wait_for(pilot, lambda: screen.session.id == first, what="opened")
        assert views(app)[0].content == "about GenServer"

        await pilot.press("f8")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: len(app.store.sessions()) == 1, what="deleted")
        assert screen.session.title == "Ecto notes"


async def test_sidebar_toggles_and_starts_hidden_at_80_columns(make_app, wait_for) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, wait_for)
        sidebar = app.screen.query_one("#sidebar")
        assert not sidebar.display
        await pilot.press("ctrl+b")
        assert sidebar.display
        await pilot.press("ctrl+b")
        assert not sidebar.display


async def test_copy_and_save_code_blocks(make_app, wait_for, workdir) -> None:
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await ready(pilot, wait_for)
        await pilot.press("ctrl+o")
        assert any("No code block" in text for _, text in app.notices)
        await say(pilot, wait_for, "counter?")
        await pilot.press("ctrl+o")  # the last block of the last answer
        assert app.clipboard == "{:ok, pid} = Counter.start_link([])\n"

        answer = views(app)[-1]
        answer.focus()
        await pilot.press("left_square_bracket")
        assert answer.selected_block == 0 and "code 1/2" in str(answer.border_subtitle)
        await pilot.press("y")
        assert app.clipboard.startswith("defmodule Counter do")

        await pilot.press("s")
        assert isinstance(app.screen, AskScreen) and app.screen.value == "lib/counter.ex"
        await pilot.press("enter")
        saved = workdir / "lib/counter.ex"
        await wait_for(pilot, saved.exists, what="saved")
        assert saved.read_text().startswith("defmodule Counter do")

        saved.write_text("mine")
        answer.focus()
        await pilot.press("ctrl+s")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="overwrite?")
        await pilot.press("n")
        assert saved.read_text() == "mine"


# -- bad input -----------------------------------------------------------------------------------------


async def test_megabyte_paste_is_refused_visibly(make_app, wait_for) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await ready(pilot, wait_for)
        prompt = app.screen.prompt
        prompt.load_text("keep this")
        prompt.post_message(events.Paste("x" * 1_000_000))
        await wait_for(
            pilot, lambda: any("Paste of 977 KB refused" in e for e in errors(app)), what="refusal"
        )
        assert prompt.text == "keep this"
        prompt.post_message(events.Paste(" and this"))
        await wait_for(pilot, lambda: " and this" in prompt.text, what="a small paste goes in")
        assert "keep this" in prompt.text


async def test_message_too_large_for_the_context_is_kept_in_the_box(make_app, wait_for) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await ready(pilot, wait_for)
        big = "defmodule A do\n" + "  x = 1\n" * 3000
        await say(pilot, wait_for, big)
        assert any("too large" in e or "tokens; the model" in e or "KB; the model" in e for e in errors(app))
        assert app.screen.prompt.text == big and stored(app) == []


async def test_corrupt_history_is_backed_up_and_the_user_told(make_app, wait_for, potion_home) -> None:
    path = default_path()
    path.write_bytes(b"garbage" * 1000)
    app = make_app()
    async with app.run_test() as pilot:
        await ready(pilot, wait_for)
        assert any("moved it to" in text for severity, text in app.notices if severity == "warning")
        await say(pilot, wait_for, "still works")
    assert list(path.parent.glob("chat.sqlite3.corrupt-*"))
    assert [s.title for s in HistoryStore.open(path).sessions()] == ["still works"]
