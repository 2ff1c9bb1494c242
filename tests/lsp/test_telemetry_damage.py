"""A damaged telemetry database (issue 17): `potion stats` says so in one line with the fix, and the
language server warns once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from lsp_helpers import RawLsp

from lsp import telemetry
from potion import cli

pytestmark = pytest.mark.timeout(60)

FAKE = {"backend": "fake", "debounceMs": 0, "fake": {"responses": ["x = 1"]}}


def damaged_database(path: Path) -> None:
    """A telemetry database whose schema reads fine and whose table pages are garbage."""
    db = sqlite3.connect(path)
    db.executescript("".join(telemetry.MIGRATIONS))
    db.executemany(
        "INSERT INTO suggestions (id, ts, kind, latency_ms) VALUES (?, ?, 'inline', 10)",
        [(f"s{i}" * 20, i) for i in range(2000)],
    )
    db.execute(f"PRAGMA user_version = {len(telemetry.MIGRATIONS)}")
    db.commit()
    db.close()
    data = bytearray(path.read_bytes())
    page = 4096
    for start in range(3 * page, len(data) - page, 2 * page):
        data[start : start + page] = b"\xa5" * page
    path.write_bytes(bytes(data))


def test_stats_reports_a_damaged_database_in_one_line_with_the_fix(home, monkeypatch, capsys):
    monkeypatch.setenv("POTION_HOME", str(home))
    damaged_database(telemetry.default_path())
    assert cli.main(["stats"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "telemetry database" in err and "mv " in err, err


def test_the_server_warns_once_about_an_unreadable_telemetry_database(home):
    (home / "data").mkdir()
    (home / "data" / "telemetry.sqlite3").write_bytes(b"this is no SQLite database" * 100)
    raw = RawLsp(home)
    try:
        raw.initialize({}, FAKE)
        raw.wait_ready()
        warnings = [
            n
            for n in raw.notifications
            if n["method"] == "window/showMessage" and "telemetry" in n["params"]["message"]
        ]
        assert len(warnings) == 1, warnings
        assert raw.shutdown() == 0
    finally:
        raw.close()
