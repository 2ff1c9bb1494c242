"""The VS Code extension: its settings agree with the server's shape, and it compiles."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

VSCODE = Path(__file__).resolve().parents[2] / "editors" / "vscode"


def _package() -> dict:
    return json.loads((VSCODE / "package.json").read_text())


def test_package_declares_inline_completion_client_and_settings() -> None:
    package = _package()
    assert package["main"] == "./out/extension.js"
    assert package["dependencies"]["vscode-languageclient"].startswith("9.")
    assert "onLanguage:elixir" in package["activationEvents"]
    props = package["contributes"]["configuration"]["properties"]
    for key in ("potion.server.path", "potion.model", "potion.backendUrl", "potion.debounceMs"):
        assert key in props
    assert props["potion.debounceMs"]["default"] == 150


def test_every_setting_is_read_by_the_extension() -> None:
    """A setting declared in package.json but never read would silently do nothing."""
    source = (VSCODE / "src" / "extension.ts").read_text()
    read = set(re.findall(r'get<\w+(?:\[\])?>\("([\w.]+)"', source))
    declared = {k.removeprefix("potion.") for k in _package()["contributes"]["configuration"]["properties"]}
    # trace.server is read by vscode-languageclient itself (client id "potion").
    assert declared - {"trace.server"} == read
    assert "registerProposedFeatures()" in source  # without it VS Code never asks for inline completions


def test_lockfile_matches_package() -> None:
    lock = json.loads((VSCODE / "package-lock.json").read_text())
    root = lock["packages"][""]
    assert root["dependencies"] == _package()["dependencies"]
    assert root["devDependencies"] == _package()["devDependencies"]


@pytest.mark.slow
def test_extension_typechecks(tmp_path: Path) -> None:
    """`npm run compile` in CI; here tsc --noEmit when node_modules is already installed (no network)."""
    tsc = VSCODE / "node_modules" / ".bin" / "tsc"
    if not tsc.exists() or shutil.which("node") is None:
        pytest.skip("run `npm ci` in editors/vscode first")
    result = subprocess.run(
        [str(tsc), "-p", str(VSCODE), "--noEmit"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _setting_keys_sent_by_editors() -> dict[str, set[str]]:
    ts = (VSCODE / "src" / "extension.ts").read_text()
    interface = ts[ts.index("export interface PotionSettings") :]
    interface = interface[: interface.index("}")]
    lua = (VSCODE.parent / "nvim" / "lua" / "potion" / "init.lua").read_text()
    table = lua[lua.index("local default_settings = {") :]
    table = table[: table.index("\n}")]
    return {
        "vscode": set(re.findall(r"^\s+(\w+): ", interface, re.M)),
        "nvim": set(re.findall(r"^\s+(\w+) = ", table, re.M)) | {"model", "backendUrl"},
    }


def test_editors_send_only_settings_the_server_reads() -> None:
    from lsp.lifecycle import SETTINGS, _snake, parse_settings

    keys = _setting_keys_sent_by_editors()
    assert keys["vscode"] == keys["nvim"]
    for key in keys["vscode"]:
        assert _snake(key) in SETTINGS, key
    config = parse_settings({"potion": {"debounceMs": 90, "hover": False, "model": None}})
    assert config.engine.debounce_ms == 90 and config.hover is False and config.model is None
    # The canary section as VS Code's readSettings() and Neovim's defaults send it.
    config = parse_settings(
        {"potion": {"canary": {"model": "cand", "backendUrl": None, "share": 0.25}, "latencyWarningMs": 900}}
    )
    assert (config.canary.model, config.canary.backend_url, config.canary.share) == ("cand", None, 0.25)
    assert config.latency_warning_ms == 900
    assert parse_settings({"potion": {"canary": {"share": 0}}}).canary.enabled is False


def test_declared_commands_are_registered_and_walkthrough_media_exist() -> None:
    """A command in package.json with no handler fails when picked; a walkthrough step without its
    media file shows an empty pane."""
    source = (VSCODE / "src" / "extension.ts").read_text()
    registered = set(re.findall(r'registerCommand\("([\w.]+)"', source))
    contributes = _package()["contributes"]
    declared = {c["command"] for c in contributes["commands"]}
    assert declared == registered
    assert "potion.toggleAiCompletions" in declared
    for walkthrough in contributes["walkthroughs"]:
        for step in walkthrough["steps"]:
            assert (VSCODE / step["media"]["markdown"]).is_file(), step["id"]
            for command in re.findall(r"\(command:([\w.]+)", step["description"]):
                assert command in declared or command.startswith("workbench."), command
