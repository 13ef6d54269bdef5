"""The workspace's SQLite results store: known architectures and cached measurements."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lts_cli.errors import LtsError
from lts_cli.space import Arch

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS archs (
    archid TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    source TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS measurements (
    key TEXT PRIMARY KEY,
    archid TEXT NOT NULL,
    settings TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    result TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS measurements_archid ON measurements (archid);
"""


class Store:
    """One connection to `lts.db`. Each write is one transaction; WAL lets processes share the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._conn = sqlite3.connect(path, timeout=60.0, isolation_level=None)
            self._conn.row_factory = sqlite3.Row
            self._open()
        except sqlite3.DatabaseError as exc:
            raise LtsError(
                f"the workspace database {path} is unusable ({exc}); move it aside to start a fresh "
                "cache (measurements in it will be taken again), or point LTS_HOME at another folder"
            ) from None

    def _open(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LtsError(
                f"the workspace database {self.path} was written by a newer lts (schema {version}, this "
                f"lts reads {SCHEMA_VERSION}); upgrade lts, or point LTS_HOME at another folder"
            )
        self._conn.execute("PRAGMA journal_mode=WAL")
        if version < SCHEMA_VERSION:
            with self._transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def put_arch(self, arch: Arch, source: str) -> None:
        """Remember an architecture so its id can be used everywhere (first source wins)."""
        with self._transaction():
            self._conn.execute(
                "INSERT OR IGNORE INTO archs (archid, config, source, created) VALUES (?, ?, ?, ?)",
                (arch.archid, json.dumps(arch.to_dict()), source, time.time()),
            )

    def find_archs(self, prefix: str) -> list[Arch]:
        """Architectures whose id starts with `prefix` (a full id matches itself)."""
        rows = self._conn.execute(
            "SELECT config FROM archs WHERE archid >= ? AND archid < ? ORDER BY archid",
            (prefix, prefix + "\uffff"),
        ).fetchall()
        return [Arch(**json.loads(row["config"])) for row in rows]

    def get_measurement(self, key: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT result FROM measurements WHERE key = ?", (key,)).fetchone()
        return json.loads(row["result"]) if row else None

    def put_measurement(
        self, key: str, archid: str, settings: dict[str, Any], fingerprint: dict[str, Any], result: dict[str, Any]
    ) -> None:
        with self._transaction():
            self._conn.execute(
                "INSERT OR REPLACE INTO measurements (key, archid, settings, fingerprint, result, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key,
                    archid,
                    json.dumps(settings, sort_keys=True),
                    json.dumps(fingerprint, sort_keys=True),
                    json.dumps(result),
                    time.time(),
                ),
            )

    def measurements_for(self, archid: str, fingerprint: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Cached results for `archid`, newest first; only this machine's when `fingerprint` is given."""
        rows = self._conn.execute(
            "SELECT fingerprint, result FROM measurements WHERE archid = ? ORDER BY created DESC", (archid,)
        ).fetchall()
        wanted = json.dumps(fingerprint, sort_keys=True) if fingerprint is not None else None
        return [json.loads(r["result"]) for r in rows if wanted is None or r["fingerprint"] == wanted]


def open_store() -> Store:
    from lts_cli import workspace

    return Store(workspace.db_path())
