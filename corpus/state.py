"""The build's work state in SQLite: which sources are collected and which files are processed.

Every step commits its own rows, so a build killed at any point (SIGKILL included) resumes where it
stopped: collected sources are not walked again, processed files are not processed again, and nothing
is recorded twice. The state belongs to one config: a changed config starts afresh.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

from corpus.sources.local import FileItem

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sources (label TEXT PRIMARY KEY, info TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS files (
        id INTEGER PRIMARY KEY, source TEXT NOT NULL, project TEXT NOT NULL, license TEXT NOT NULL,
        path TEXT NOT NULL, abspath TEXT NOT NULL, status TEXT, result TEXT, minhash BLOB,
        UNIQUE (source, path))""",
)


class State:
    def __init__(self, path: Path, fingerprint: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        for stmt in SCHEMA:
            self.db.execute(stmt)
        row = self.db.execute("SELECT value FROM meta WHERE key='fingerprint'").fetchone()
        if row is not None and row[0] != fingerprint:
            with self.db:
                for table in ("meta", "sources", "files"):
                    self.db.execute(f"DELETE FROM {table}")
            row = None
        if row is None:
            with self.db:
                self.db.execute("INSERT INTO meta VALUES ('fingerprint', ?)", (fingerprint,))
        self.resumed = self.db.execute("SELECT COUNT(*) FROM sources").fetchone()[0] > 0

    def close(self) -> None:
        self.db.close()

    def source_info(self, label: str) -> dict | None:
        row = self.db.execute("SELECT info FROM sources WHERE label=?", (label,)).fetchone()
        return json.loads(row[0]) if row else None

    def sources(self) -> list[dict]:
        return [json.loads(r[0]) for r in self.db.execute("SELECT info FROM sources ORDER BY rowid")]

    def add_source(self, label: str, info: dict, items: Iterable[tuple[FileItem, str | None]]) -> None:
        """A source's files (status set for those excluded up front, e.g. by licence) and the source, in
        one transaction."""
        with self.db:
            self.db.executemany(
                "INSERT OR IGNORE INTO files (source, project, license, path, abspath, status) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                ((f.source, f.project, f.license, f.path, f.abspath, status) for f, status in items),
            )
            self.db.execute("INSERT INTO sources VALUES (?, ?)", (label, json.dumps(info)))

    def pending(self) -> list[dict]:
        cur = self.db.execute(
            "SELECT id, source, project, license, path, abspath FROM files WHERE status IS NULL ORDER BY id"
        )
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur]

    def record(self, results: Iterable[tuple[int, dict]]) -> None:
        with self.db:
            self.db.executemany(
                "UPDATE files SET status=?, result=?, minhash=? WHERE id=? AND status IS NULL",
                (
                    (
                        r["status"],
                        json.dumps({k: v for k, v in r.items() if k != "minhash"}),
                        r.get("minhash"),
                        file_id,
                    )
                    for file_id, r in results
                ),
            )

    def status_counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT status, COUNT(*) FROM files GROUP BY status ORDER BY status")
        return {status or "pending": n for status, n in rows}

    def excluded_licenses(self) -> dict[str, int]:
        """Files left out by the licence gate, per licence."""
        rows = self.db.execute(
            "SELECT license, COUNT(*) FROM files WHERE status = 'license_excluded' "
            "GROUP BY license ORDER BY license"
        )
        return dict(rows.fetchall())

    def kept(self) -> Iterator[dict]:
        """Processed files that passed the per-file stages, in the stable keep-first order."""
        cur = self.db.execute(
            "SELECT source, project, license, path, result, minhash FROM files WHERE status='kept' "
            "ORDER BY source, project, path"
        )
        for source, project, lic, path, result, minhash in cur:
            row = json.loads(result)
            row.update(source=source, project=project, license=lic, path=path, minhash=minhash)
            yield row
