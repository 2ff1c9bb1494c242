"""A damaged telemetry database (issue 17): `potion stats` says so in one line with the fix, and the
language server warns once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from lsp_helpers import RawLsp

from lsp import telemetry
from lsp.errors import TelemetryError
from potion import cli
from tests.sqlite_damage import checkpoint, garble_page, last_page_of, page_holding

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


# -- repair and recovery ------------------------------------------------------------------------------

INLINE_CAPS = {"textDocument": {"inlineCompletion": {}}}


def recorded(path: Path, n: int = 600) -> None:
    """A healthy telemetry database of `n` suggestions, folded into the main file."""
    db = telemetry.connect(path)
    # The marker is in `uri`, which no index holds: the page it is on is a table page.
    db.executemany(
        "INSERT INTO suggestions (id, ts, uri, kind, latency_ms, prompt_tokens, completion_tokens, shown)"
        " VALUES (?, ?, ?, 'inline', ?, 20, 5, 1)",
        [(f"s{i}", 1_700_000_000.0 + i, f"file:///doc-{i:05d}.ex", 10.0 + i) for i in range(n)],
    )
    db.commit()
    db.close()
    checkpoint(path)


def test_stats_names_the_repair_and_repair_keeps_the_readable_rows(home, monkeypatch, capsys):
    monkeypatch.setenv("POTION_HOME", str(home))
    path = telemetry.default_path()
    recorded(path)
    garble_page(path, page_holding(path, b"doc-00300.ex"))
    assert cli.main(["stats"]) == 1
    assert "potion stats --repair" in capsys.readouterr().err

    assert cli.main(["stats", "--repair"]) == 0
    line = capsys.readouterr().out
    assert len(line.strip().splitlines()) == 1 and "saved " in line and ".corrupt-" in line, line
    stats = telemetry.summary(path)
    assert 500 < stats["suggestions"] < 600
    [kept] = path.parent.glob("telemetry.sqlite3.corrupt-*")
    assert b"\xa5" * 1024 in kept.read_bytes()
    assert cli.main(["stats", "--repair"]) == 0
    assert "healthy, nothing to repair" in capsys.readouterr().out


def test_a_corrupt_index_page_is_reported_not_shown_as_old_numbers(tmp_path):
    path = tmp_path / "telemetry.sqlite3"
    recorded(path)
    # The rows still read, but every insert needs this page: stats must not pass old numbers for current.
    garble_page(path, last_page_of(path, "suggestions_ts"))
    with pytest.raises(TelemetryError) as info:
        telemetry.summary(path)
    assert "potion stats --repair" in info.value.user_message()
    assert "\n" not in info.value.user_message()


def test_a_write_that_finds_damage_repairs_the_file_says_so_once_and_keeps_recording(tmp_path):
    path = tmp_path / "telemetry.sqlite3"
    recorded(path)
    notices: list[str] = []
    t = telemetry.Telemetry(path, recover=True, on_notice=notices.append)
    assert t.notice is None and notices == []
    # The disk goes bad under a running server, on the last page of the index every insert writes to.
    garble_page(path, last_page_of(path, "suggestions_ts"))
    other = sqlite3.connect(path)  # another writer's commit makes the server read its pages again
    other.execute(f"PRAGMA user_version = {len(telemetry.MIGRATIONS)}")
    other.close()
    for i in range(3):
        t.record(telemetry.Record(f"new-{i}", "file:///b.ex", "inline", 5.0, 1, 1, True, False))
    t.flush(60)
    t.close()
    assert len(notices) == 1 and "damaged" in notices[0] and "saved " in notices[0], notices
    db = sqlite3.connect(path)
    ids = {r[0] for r in db.execute("SELECT id FROM suggestions")}
    assert {"new-0", "new-1", "new-2"} <= ids  # every new row is recorded, none dropped
    assert len(ids) > 500  # and the old rows were salvaged
    assert telemetry.summary(path)["suggestions"] == len(ids)


def test_a_damaged_file_at_open_is_repaired_when_recovering(tmp_path):
    path = tmp_path / "telemetry.sqlite3"
    recorded(path)
    garble_page(path, page_holding(path, b"doc-00100.ex"))
    notices: list[str] = []
    t = telemetry.Telemetry(path, recover=True, on_notice=notices.append)
    t.record(telemetry.Record("after", "file:///a.ex", "inline", 1.0, 1, 1, True, False))
    t.flush(60)
    t.close()
    assert t.notice and notices == [t.notice]
    assert 450 < telemetry.summary(path)["suggestions"] <= 600


def test_the_server_repairs_a_damaged_telemetry_database_and_records_again(home):
    path = home / "data" / "telemetry.sqlite3"
    path.parent.mkdir(parents=True)
    recorded(path)
    garble_page(path, page_holding(path, b"doc-00300.ex"))
    raw = RawLsp(home)
    try:
        raw.initialize(INLINE_CAPS, FAKE)
        raw.wait_ready()
        raw.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": "file:///w/a.ex", "languageId": "elixir", "version": 1, "text": "x\n"}},
        )
        answer = raw.call(
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": "file:///w/a.ex"},
                "position": {"line": 1, "character": 0},
                "context": {"triggerKind": 1},
            },
        )
        assert answer["result"]["items"], answer
        assert raw.shutdown() == 0
        warnings = [
            n["params"]["message"]
            for n in raw.notifications
            if n["method"] == "window/showMessage" and "telemetry" in n["params"]["message"]
        ]
        assert len(warnings) == 1 and "saved " in warnings[0], warnings
    finally:
        raw.close()
    stats = telemetry.summary(path)
    assert 450 < stats["suggestions"] <= 601 and stats["p50_ms"] > 0
