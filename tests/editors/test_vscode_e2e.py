"""The VS Code extension in real VS Code: code-server in Chromium, driven by Playwright as a user would.

The .vsix built from editors/vscode is installed into code-server, which opens a small Mix project;
`potion.server.path` points at a wrapper that runs this checkout's `potion lsp` with the scripted fake
backend (so the ghost text is known) and logs every settings message the server receives. The test
checks what a user sees, with a screenshot of each step (PNG, in the folder it prints):

 1. the server starts on an .ex file (status bar: ready);
 2. (test_ghost_text_and_tab_in_vscode) typing in a function body shows the ghost text; Tab inserts it
    and telemetry records an acceptance;
 3. hovering `Enum.map` shows its docs;
 4. the quick-fix menu offers the missing callbacks (a `use GenServer` module) and the scaffolds (an
    empty file);
 5. Potion: New OTP module creates and opens the file;
 6. changing `potion.debounceMs` in the Settings editor reaches the server; Potion: Toggle AI
    completions turns the status bar to "AI off" and back;
 7. a `potion.server.path` that does not exist gives one notification naming the setting, and no loop.

Needs what scripts/install-editor-e2e.sh installs (`make editor-e2e`); skips, naming what is missing,
without it. Selected with `-m editors_e2e`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from editor_tools import editors_cache

REPO = Path(__file__).resolve().parents[2]
CACHE = editors_cache().resolve()
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("POTION_ARTIFACTS", REPO / "tmp" / "artifacts")) / "vscode-e2e"

# The scripted model: whatever the prompt, it continues `Enum.` in the function body with this.
GHOST = "map(items, &(&1 * 2))"

pytestmark = [pytest.mark.editors_e2e, pytest.mark.slow, pytest.mark.timeout(600)]


def _missing() -> str | None:
    install = "run scripts/install-editor-e2e.sh (make editor-e2e)"
    if not (CACHE / "code-server").exists():
        return f"no code-server in {CACHE}: {install}"
    if not (CACHE / "node-bin" / "node").exists():
        return f"no Node 24 in {CACHE}: {install}"
    if not (CACHE / "potion-vscode.vsix").exists():
        return f"no potion-vscode.vsix in {CACHE}: {install}"
    if not CHROMIUM.exists():
        return f"no {CHROMIUM} (Debian's chromium): {install}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return f"Playwright is not installed: {install}"
    return None


WRAPPER = """#!{python}
# `potion lsp --stdio` of this checkout with the scripted fake backend, logging the settings it receives.
import json, os, sys
sys.path.insert(0, {repo!r})
import lsp.server
from lsp.lifecycle import ServerConfig

_create, _apply = lsp.server.create_server, lsp.server.PotionServer.apply_settings

def apply_settings(self, options):
    with open({log!r}, "a") as f:
        f.write(json.dumps(options) + "\\n")
    _apply(self, options)

lsp.server.PotionServer.apply_settings = apply_settings
_handle = lsp.server.PotionProtocol.handle_message

def handle_message(self, message):  # every method received, for the artifacts
    method = message.get("method") if isinstance(message, dict) else getattr(message, "method", None)
    if method:
        with open({log!r} + ".methods", "a") as f:
            f.write(method + "\\n")
    return _handle(self, message)

lsp.server.PotionProtocol.handle_message = handle_message
lsp.server.create_server = lambda config=None: _create(ServerConfig(**{config!r}))
from lsp.cli import main
sys.exit(main(sys.argv[2:]))  # argv: lsp --stdio
"""

MATH = """defmodule MyApp.Math do
  def double_all(items) do

  end

  def names(users) do
    Enum.map(users, & &1.name)
  end
end
"""

CACHE_MODULE = """defmodule MyApp.Cache do
  use GenServer
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, check: Callable[[], object], timeout: float = 60.0, every: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def _quick_fix(page, menu, text: str, what: str, timeout: float = 60.0) -> None:
    """Opens the quick-fix menu until it lists `text`: asked right after a file opens, VS Code may show
    "no code actions" before the server has the document, and a user would press Ctrl+. again."""
    deadline = time.monotonic() + timeout
    while True:
        page.keyboard.press("Escape")
        page.keyboard.press("Control+.")
        try:
            _wait(what, lambda: text in (menu.inner_text() if menu.count() else ""), timeout=5)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}") from None


class Session:
    """code-server on a Mix project, with Chromium on it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.project = root / "my_app"
        self.home = root / "home"
        self.potion_home = root / "potion-home"
        self.settings_log = root / "settings.jsonl"
        self.user_dir = root / "user-data"
        self.settings_file = self.user_dir / "User" / "settings.json"
        self.artifacts = root  # the fixture sets the test's folder under ARTIFACTS

    def write_project(self) -> None:
        lib = self.project / "lib" / "my_app"
        lib.mkdir(parents=True)
        (self.project / "mix.exs").write_text(
            "defmodule MyApp.MixProject do\n  use Mix.Project\n\n"
            '  def project, do: [app: :my_app, version: "0.1.0"]\nend\n'
        )
        (lib / "math.ex").write_text(MATH)
        (lib / "cache.ex").write_text(CACHE_MODULE)
        (lib / "empty_worker.ex").write_text("")
        shutil.copy(REPO / "examples" / "counter.ex", lib / "counter.ex")

    def write_wrapper(self, config: dict) -> Path:
        wrapper = self.root / "potion-e2e"
        wrapper.write_text(
            WRAPPER.format(python=sys.executable, repo=str(REPO), log=str(self.settings_log), config=config)
        )
        wrapper.chmod(0o755)
        return wrapper

    def user_settings(self, **extra: object) -> None:
        self.settings_file.parent.mkdir(parents=True, exist_ok=True)
        settings = {
            "workbench.startupEditor": "none",
            "workbench.tips.enabled": False,
            "workbench.enableExperiments": False,
            "security.workspace.trust.enabled": False,
            "telemetry.telemetryLevel": "off",
            "extensions.ignoreRecommendations": True,
            "update.mode": "none",
            "editor.inlineSuggest.enabled": True,
            # The Elixir completion list would cover the ghost text: this test is about the ghost text.
            "editor.quickSuggestions": {"other": "off", "comments": "off", "strings": "off"},
            "editor.suggestOnTriggerCharacters": False,
            "editor.hover.delay": 100,
            "window.restoreWindows": "none",
            "potion.trace.server": "messages",  # the LSP traffic, in the logs kept with the screenshots
            # VS Code's own AI (chat, its inline suggestions) stays out of the picture.
            "chat.disableAIFeatures": True,
            "workbench.secondarySideBar.defaultVisibility": "hidden",
            **extra,
        }
        tmp = self.settings_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(settings, indent=2))
        tmp.replace(self.settings_file)

    def env(self) -> dict[str, str]:
        return {
            "PATH": f"{CACHE / 'node-bin'}:/usr/bin:/bin",
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_DATA_HOME": str(self.home / ".local" / "share"),
            "POTION_HOME": str(self.potion_home),
            "PYTHONPATH": str(REPO),
            "LANG": "C.UTF-8",
        }

    def code_server(self, *args: str, **kw) -> subprocess.Popen | subprocess.CompletedProcess:
        base = [
            str(CACHE / "code-server"),
            "--user-data-dir",
            str(self.user_dir),
            "--extensions-dir",
            str(self.root / "extensions"),
            *args,
        ]
        if kw.pop("background", False):
            return subprocess.Popen(base, env=self.env(), **kw)
        return subprocess.run(base, env=self.env(), capture_output=True, text=True, timeout=300, **kw)


def _telemetry_accepted(potion_home: Path) -> int:
    path = potion_home / "data" / "telemetry.sqlite3"
    if not path.exists():
        return 0
    db = sqlite3.connect(path, timeout=5)
    try:
        return db.execute("SELECT COUNT(*) FROM suggestions WHERE accepted = 1").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


DEFAULT_MODEL = object()  # in a vscode_setup marker: the default model's path, resolved by the fixture
FAKE = {"backend": "fake", "fake": {"responses": [GHOST], "token_delay_ms": 0}}


@pytest.fixture
def vscode(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Session, object]]:
    """code-server with the extension on the Mix project, and a page on it. The server's settings
    (`ServerConfig` fields) and extra user settings come from the test's `vscode_setup` marker."""
    missing = _missing()
    if missing:
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    marker = request.node.get_closest_marker("vscode_setup")
    config, extra = marker.args if marker else (FAKE, {})
    if extra.get("potion.model") is DEFAULT_MODEL:
        from potion import registry
        from potion.errors import PotionError

        try:
            extra = {**extra, "potion.model": str(registry.resolve(pull=False))}
        except PotionError as exc:
            pytest.skip(f"no default model: {exc}")
    session = Session(tmp_path)
    session.home.mkdir()
    session.potion_home.mkdir()
    session.write_project()
    session.user_settings(**{"potion.server.path": str(session.write_wrapper(config)), **extra})
    installed = session.code_server("--install-extension", str(CACHE / "potion-vscode.vsix"))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "potion.potion-vscode" in session.code_server("--list-extensions").stdout

    port = _free_port()
    log = (tmp_path / "code-server.log").open("w")
    server = session.code_server(
        "--auth",
        "none",
        "--bind-addr",
        f"127.0.0.1:{port}",
        "--disable-telemetry",
        "--disable-update-check",
        "--disable-workspace-trust",
        "--disable-getting-started-override",
        "--ignore-last-opened",
        background=True,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def healthy() -> bool:
        assert server.poll() is None, (tmp_path / "code-server.log").read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    session.artifacts = ARTIFACTS / request.node.name
    session.artifacts.mkdir(parents=True, exist_ok=True)
    for old in session.artifacts.glob("*.png"):
        old.unlink()
    print(f"\nscreenshots: {session.artifacts}")
    try:
        _wait("code-server to answer", healthy, timeout=120)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(60_000)
            page.goto(f"http://127.0.0.1:{port}/?folder={session.project}")
            page.locator(".monaco-workbench").wait_for()
            try:
                yield session, page
            finally:
                page.screenshot(path=str(session.artifacts / "last.png"))  # where a failure stopped
                browser.close()
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        (session.artifacts / "code-server.log").write_text((tmp_path / "code-server.log").read_text())


def _shot(session: Session, page, name: str) -> None:
    page.screenshot(path=str(session.artifacts / f"{name}.png"))


def _command(page, title: str) -> None:
    page.keyboard.press("F1")
    box = page.locator(".quick-input-widget input")
    box.wait_for()
    box.fill(f">{title}")
    page.locator(".quick-input-list .monaco-list-row", has_text=title).first.wait_for()
    page.keyboard.press("Enter")


def _open_file(page, name: str) -> None:
    page.keyboard.press("Control+P")
    box = page.locator(".quick-input-widget input")
    box.wait_for()
    box.fill(name)
    page.locator(".quick-input-list .monaco-list-row", has_text=name).first.wait_for(timeout=180_000)
    page.keyboard.press("Enter")
    page.locator(".tab.active", has_text=name).wait_for()
    page.locator(".monaco-editor .view-lines").first.wait_for()


def _goto(page, line: int, column: int) -> None:
    page.keyboard.press("Control+G")
    box = page.locator(".quick-input-widget input")
    box.wait_for()
    box.fill(f":{line}:{column}")
    page.keyboard.press("Enter")


def _set_setting(page, query: str, title: str, value: str) -> None:
    """Type `value` into a setting of the Settings editor, as a user does."""
    if page.locator(".settings-editor").is_visible():
        page.keyboard.press("Control+F")  # to the Settings editor's search box
    else:
        _command(page, "Preferences: Open Settings (UI)")  # opens with the search box focused
    page.locator(".settings-editor").wait_for()
    page.keyboard.press("Control+A")
    page.keyboard.type(query)
    field = page.locator(".setting-item-contents", has_text=title).locator("input").first
    field.wait_for()
    field.fill(value)
    field.press("Tab")


def _editor_text(page) -> str:
    return page.locator(".monaco-editor .view-lines").first.inner_text().replace("\u00a0", " ")


def _ghost_text(page) -> str:
    """The ghost text shown in the editor (VS Code renders its spaces as no-break spaces)."""
    parts = page.locator(".ghost-text-decoration, .ghost-text").all_inner_texts()
    return "".join(parts).replace("\u00a0", " ")


def _status(page) -> str:
    item = page.locator(".statusbar-item", has_text="Potion").first
    return item.inner_text() if item.count() else ""


def test_a_user_session_in_vscode(vscode) -> None:
    session, page = vscode
    started = time.monotonic()

    # 1. The server starts on an .ex file: the status bar says the (fake) model is ready.
    _open_file(page, "math.ex")
    _wait("the status bar to show Potion ready", lambda: _status(page).strip() == "Potion", timeout=90)
    _shot(session, page, "01-server-ready")

    # 3. Hover over Enum.map shows its docs.
    _goto(page, 7, 11)  # on `map` of `Enum.map`
    page.keyboard.press("Control+K")
    page.keyboard.press("Control+I")  # Show Hover
    hover = page.locator(".monaco-hover-content", has_text="enumerable")
    _wait("the hover of Enum.map", hover.is_visible, timeout=30)
    assert "map" in hover.inner_text()
    _shot(session, page, "04-hover")

    # 4. Quick fixes: missing callbacks in a GenServer module, scaffolds in an empty file.
    page.keyboard.press("Escape")
    _open_file(page, "cache.ex")
    _goto(page, 2, 3)
    menu = page.locator(".action-widget").first
    _quick_fix(page, menu, "callbacks", "the missing-callbacks action")
    assert "GenServer" in menu.inner_text()
    _shot(session, page, "05-quick-fix-callbacks")
    page.keyboard.press("Escape")
    _open_file(page, "empty_worker.ex")
    _quick_fix(page, menu, "scaffold for MyApp.EmptyWorker", "the scaffold actions")
    _shot(session, page, "06-quick-fix-scaffolds")
    page.keyboard.press("Escape")

    # 5. Potion: New OTP module creates the file and opens it.
    _command(page, "Potion: New OTP module")
    page.locator(".quick-input-list .monaco-list-row", has_text="GenServer").first.wait_for()
    page.locator(".quick-input-widget input").fill("GenServer")
    page.keyboard.press("Enter")
    page.locator(".quick-input-widget input").fill("MyApp.Worker")
    page.keyboard.press("Enter")
    page.locator(".tab.active", has_text="worker.ex").wait_for()
    _wait("the new module's text", lambda: "defmodule MyApp.Worker" in _editor_text(page), timeout=20)
    assert "use GenServer" in _editor_text(page)
    assert (session.project / "lib" / "my_app" / "worker.ex").exists()
    _shot(session, page, "07-new-otp-module")

    # 6. potion.debounceMs changed in the Settings editor reaches the server.
    _set_setting(page, "potion.debounceMs", "Debounce Ms", "75")
    _wait(
        "the server to receive debounceMs 75",
        lambda: any(
            (json.loads(line).get("potion") or {}).get("debounceMs") == 75
            for line in session.settings_log.read_text().splitlines()
        ),
        timeout=30,
    )
    _shot(session, page, "08-setting-reaches-server")

    # The status bar follows Potion: Toggle AI completions.
    page.keyboard.press("Escape")  # out of the Settings editor
    page.locator(".settings-editor").wait_for(state="hidden")
    _command(page, "Potion: Toggle AI completions")
    _wait("the status bar to say AI off", lambda: "AI off" in _status(page), timeout=20)
    _shot(session, page, "09-ai-off")
    _command(page, "Potion: Toggle AI completions")
    _wait("the status bar to say ready again", lambda: _status(page).strip() == "Potion", timeout=20)

    # 7. A potion.server.path that does not exist: one notification naming the setting, no restart loop.
    _set_setting(page, "potion.server.path", "Server: Path", str(session.root / "no-such-potion"))
    toast = page.locator(".notification-toast", has_text="potion.server.path")
    _wait("the notification about potion.server.path", lambda: toast.count() > 0, timeout=30)
    _wait("the status bar to say stopped", lambda: "stopped" in _status(page), timeout=10)
    _shot(session, page, "10-missing-executable")
    # It waits for the setting to change (no restart loop): pointing it back starts the server again.
    _set_setting(page, "potion.server.path", "Server: Path", str(session.root / "potion-e2e"))
    _wait("the server to start again", lambda: _status(page).strip() == "Potion", timeout=60)
    assert toast.count() == 1
    page.keyboard.press("Escape")
    page.locator(".settings-editor").wait_for(state="hidden")

    print(f"\nthe user session took {time.monotonic() - started:.1f}s")
    shutil.copy(session.settings_log, session.artifacts / "settings-received.jsonl")


@pytest.mark.e2e
@pytest.mark.vscode_setup(
    {}, {"potion.model": DEFAULT_MODEL, "potion.maxTokens": 48, "potion.timeBudgetMs": 60_000}
)
def test_ghost_text_from_the_default_model(vscode) -> None:
    """The README's picture: Potion's ghost text from the real default model, in VS Code."""
    session, page = vscode
    _open_file(page, "counter.ex")
    _wait("the default model to load", lambda: _status(page).strip() == "Potion", timeout=240)
    _goto(page, 14, 5)  # the empty body of increment/0, after its indentation
    page.keyboard.type("G")
    _wait("ghost text from the model", lambda: _ghost_text(page).strip(), timeout=120)
    _shot(session, page, "ghost-text-default-model")
    print("suggestion:", _ghost_text(page))


def test_ghost_text_and_tab_in_vscode(vscode) -> None:
    session, page = vscode
    _open_file(page, "math.ex")
    _wait("the status bar to show Potion ready", lambda: _status(page).strip() == "Potion", timeout=90)
    # Ghost text in a function body; Tab accepts it and telemetry records the acceptance.
    _goto(page, 3, 1)
    page.keyboard.type("    Enum.")
    _wait("ghost text", lambda: GHOST in _ghost_text(page), timeout=60)
    _shot(session, page, "02-ghost-text")
    page.keyboard.press("Tab")
    _wait("the suggestion to be inserted", lambda: f"Enum.{GHOST}" in _editor_text(page), timeout=20)
    _shot(session, page, "03-accepted")
    _wait("telemetry to record the acceptance", lambda: _telemetry_accepted(session.potion_home) >= 1, 30)
