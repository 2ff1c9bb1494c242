"""The VS Code extension's supervision rules (editors/vscode/src/supervision.ts), run in plain Node.

`potion.server.path` resolved as a spawn would (missing, not executable, a directory: a message naming
what to fix, never a restart loop), the crash back-off, and the status bar text for each model state.
The same rules are seen in real VS Code by tests/editors/test_vscode_e2e.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

VSCODE = Path(__file__).resolve().parents[2] / "editors" / "vscode"
TSC = VSCODE / "node_modules" / ".bin" / "tsc"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not TSC.exists(), reason="needs node and `npm ci` in editors/vscode"
)


@pytest.fixture(scope="module")
def supervision(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vscode-out")
    subprocess.run(
        [str(TSC), "-p", str(VSCODE), "--outDir", str(out)], check=True, capture_output=True, timeout=180
    )
    return out / "supervision.js"


def node(supervision: Path, script: str) -> object:
    code = (
        f"const s = require({json.dumps(str(supervision))});\n"
        f"console.log(JSON.stringify((() => {{{script}}})()));"
    )
    result = subprocess.run(["node", "-e", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_server_path_is_resolved_as_a_spawn_would(supervision: Path, tmp_path: Path) -> None:
    good = tmp_path / "bin" / "potion"
    good.parent.mkdir()
    good.write_text("#!/bin/sh\n")
    good.chmod(0o755)
    plain = tmp_path / "not-executable"
    plain.write_text("")
    plain.chmod(0o644)
    cases = {
        "on_path": ["potion", str(good.parent)],
        "absolute": [str(good), ""],
        "relative": ["bin/potion", ""],
        "missing_name": ["potion", str(tmp_path)],
        "missing_path": [str(tmp_path / "nope" / "potion"), ""],
        "not_executable": [str(plain), ""],
        "directory": [str(tmp_path), ""],
        "empty": ["  ", str(good.parent)],
    }
    got = node(
        supervision,
        f"const cases = {json.dumps(cases)}; const out = {{}};"
        "for (const [k, [cmd, p]] of Object.entries(cases))"
        f" out[k] = s.resolveExecutable(cmd, p, {json.dumps(str(tmp_path))});"
        "return out;",
    )
    assert got["on_path"] == {"path": str(good)}
    assert got["absolute"] == {"path": str(good)}
    assert got["relative"] == {"path": str(good)}
    assert got["missing_name"] == {"problem": "`potion` is not on PATH"}
    assert got["missing_path"]["problem"].endswith("does not exist")
    assert got["not_executable"]["problem"].endswith("is not executable")
    assert got["directory"]["problem"].endswith("is not a file")
    assert got["empty"] == {"problem": "is empty"}


def test_crashes_restart_with_back_off_then_stop(supervision: Path) -> None:
    got = node(
        supervision,
        "const p = new s.RestartPolicy([1000, 2000, 4000], 60000);"
        "const burst = [0, 10, 20, 30].map((t) => p.crashed(t) ?? null);"
        "const count = p.count;"
        # a crash long after the burst is a first crash again
        "const later = p.crashed(30 + 60000);"
        "p.reset(); const afterReset = p.crashed(60100);"
        "return { burst, count, later, afterReset };",
    )
    assert got == {"burst": [1000, 2000, 4000, None], "count": 4, "later": 1000, "afterReset": 1000}


def test_status_bar_text_per_state(supervision: Path) -> None:
    got = node(
        supervision,
        "const out = {}; for (const st of ['starting', 'loading', 'ready', 'off', 'error', 'stopped'])"
        " out[st] = s.statusView(st, st === 'error' ? 'no such model: nope' : 'qwen'); return out;",
    )
    assert "loading" in got["loading"]["text"] and not got["loading"]["error"]
    assert "starting" in got["starting"]["text"]  # never the bare "Potion" that means ready
    assert got["ready"]["text"].endswith("Potion") and "qwen ready" in got["ready"]["tooltip"]
    assert "AI off" in got["off"]["text"]
    assert got["error"]["error"] and "no such model: nope" in got["error"]["tooltip"]
    assert got["stopped"]["error"] and "stopped" in got["stopped"]["text"]
