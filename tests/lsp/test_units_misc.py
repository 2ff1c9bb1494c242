"""Ring buffer of recent chunks, settings parsing, telemetry and `potion stats`."""

from __future__ import annotations

import sqlite3

import pytest

from lsp.context import RecentChunks, lines_around
from lsp.engine import EngineConfig
from lsp.errors import ConfigError, TelemetryError
from lsp.lifecycle import ServerConfig, parse_settings
from lsp.telemetry import MIGRATIONS, Record, Telemetry, summary


def test_lines_around_is_centred_and_clamped():
    source = "".join(f"l{i}\n" for i in range(100))
    start, end, text = lines_around(source, 50, 4)
    assert (start, end) == (48, 52) and text == "l48\nl49\nl50\nl51\n"
    assert lines_around(source, 0, 4)[:2] == (0, 4)
    assert lines_around(source, 500, 4)[2] == ""


def test_ring_buffer_keeps_newest_other_files_within_budget():
    ring = RecentChunks(max_chunks=3, chunk_lines=2)
    for i in range(5):
        ring.note(f"file:///f{i}.ex", f"defmodule F{i} do\nend\n", 0)
    assert [c.uri for c in ring.chunks()] == ["file:///f2.ex", "file:///f3.ex", "file:///f4.ex"]
    extra = ring.extra_files("file:///f4.ex", max_chars=1000)
    assert [path for path, _ in extra] == ["/f3.ex", "/f2.ex"]
    assert ring.extra_files("file:///x.ex", max_chars=20) == [("/f4.ex", "defmodule F4 do\nend\n")]


def test_ring_buffer_replaces_overlapping_chunk_of_same_file():
    ring = RecentChunks(chunk_lines=4)
    source = "".join(f"line {i}\n" for i in range(40))
    ring.note("file:///a.ex", source, 10)
    ring.note("file:///a.ex", source, 11)
    ring.note("file:///a.ex", source, 30)
    assert [(c.start_line, c.end_line) for c in ring.chunks()] == [(9, 13), (28, 32)]
    ring.forget("file:///a.ex")
    assert ring.chunks() == []


def test_settings_flat_nested_camel_and_snake():
    config = parse_settings({"potion": {"debounceMs": 80, "max_tokens": 32, "hover": False}})
    assert (config.engine.debounce_ms, config.engine.max_tokens, config.hover) == (80, 32, False)
    # The engine's settings nest in the server's: one change leaves the engine's other defaults alone.
    assert config.engine == EngineConfig(debounce_ms=80, max_tokens=32)
    assert parse_settings({"aiItemWaitMs": 0}, config).engine == config.engine
    assert parse_settings({"backendUrl": "http://127.0.0.1:8080"}).backend_url == "http://127.0.0.1:8080"
    assert parse_settings(None) == ServerConfig()
    assert parse_settings({"unknownThing": 1}) == ServerConfig()


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"debounceMs": "soon"}, "debounceMs"),
        ({"debounceMs": -1}, "debounceMs"),
        ({"maxTokens": 1.5}, "maxTokens"),
        ({"aiItemWaitMs": 99_999}, "aiItemWaitMs"),
        ({"hover": "yes"}, "hover"),
        ({"backend": "gpu"}, "backend"),
        ({"model": 3}, "model"),
        ("not an object", "settings"),
    ],
)
def test_bad_settings_name_the_setting(options, named):
    with pytest.raises(ConfigError) as info:
        parse_settings(options)
    assert named in info.value.user_message()


def test_telemetry_records_and_summarises(tmp_path):
    path = tmp_path / "t.sqlite3"
    telemetry = Telemetry(path)
    for i in range(10):
        telemetry.record(Record(f"s{i}", "file:///a.ex", "inline", float(10 * (i + 1)), 20, 5, True, i >= 8))
    telemetry.accepted("s1")
    telemetry.accepted("s2")
    telemetry.flush()
    telemetry.close()
    stats = summary(path)
    assert stats["suggestions"] == 10 and stats["shown"] == 10 and stats["accepted"] == 2
    assert stats["p50_ms"] in (50.0, 60.0) and stats["p95_ms"] == 100.0
    assert stats["acceptance_rate"] == 0.2 and stats["cache_hit_rate"] == 0.2
    # Migrations are numbered: the schema version is the number of migrations.
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) == 3


def test_telemetry_on_a_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "t.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(TelemetryError) as info:
        Telemetry(path)
    assert str(path) in info.value.user_message()
    assert path.read_bytes().startswith(b"this is not")  # nothing of the user's is overwritten


def test_telemetry_from_a_newer_potion_is_a_clear_error(tmp_path):
    path = tmp_path / "t.sqlite3"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 40")
    db.close()
    with pytest.raises(TelemetryError) as info:
        Telemetry(path)
    assert f"newer than this Potion's {len(MIGRATIONS)}" in info.value.user_message()


def test_summary_without_a_database():
    assert summary(__import__("pathlib").Path("/nonexistent/t.sqlite3"))["suggestions"] == 0


def test_potion_stats_command(potion_home, capsys):
    from potion.cli import main

    assert main(["stats"]) == 0
    assert "no suggestions recorded yet" in capsys.readouterr().out
    telemetry = Telemetry()
    telemetry.record(Record("a", "file:///a.ex", "inline", 42.0, 10, 3, True, False))
    telemetry.accepted("a")
    telemetry.flush()
    telemetry.close()
    assert main(["stats"]) == 0
    out = capsys.readouterr().out
    assert "p50 42 ms" in out and "100.0% of shown" in out
    assert main(["stats", "--json"]) == 0
    assert '"accepted": 1' in capsys.readouterr().out
    assert main(["stats", "--days", "-1"]) == 2
    assert "--days" in capsys.readouterr().err
