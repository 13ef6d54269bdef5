"""The workspace's SQLite results store: known architectures and cached measurements.

The schema has a version (`PRAGMA user_version`); an older database is migrated in place, one
transaction per step, so it is either fully migrated or untouched. Anything that does not read
as this schema (a missing table or column) is reported as one error that names the file, and the
file is left as it is. A cached measurement is read with every field checked, one row at a time: a
row that does not read as one is `Damaged` (as good as absent), never an error for the whole store.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lts_cli.errors import LtsError
from lts_cli.machine import Fingerprint
from lts_cli.settings import Measurement, SettingsKey
from lts_cli.space import Arch
from lts_cli.views import JsonObject

SCHEMA_VERSION = 2
LOCK_WAIT_S = 60.0  # how long a process waits for another one writing the database

# MIGRATIONS[v] takes a database from version v to v + 1 (version 0: an empty file). Each must be
# harmless to run twice (IF NOT EXISTS): processes opening a new workspace at once may both take it.
MIGRATIONS: dict[int, str] = {
    0: """
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
""",
    # Everything measured on one machine with one set of settings (what a latency model learns from).
    1: "CREATE INDEX IF NOT EXISTS measurements_machine ON measurements (fingerprint, settings);",
}

_COLUMNS = {
    "archs": {"archid", "config", "source", "created"},
    "measurements": {"key", "archid", "settings", "fingerprint", "result", "created"},
}


class Store:
    """One connection to `lts.db`. Each write is one transaction; WAL lets processes share the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._conn = sqlite3.connect(path, timeout=LOCK_WAIT_S, isolation_level=None)
            self._conn.row_factory = sqlite3.Row
            self._open()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise self._damaged(str(exc)) from exc
            raise LtsError(
                f"the workspace database {self.path} stayed locked by another process for {LOCK_WAIT_S:.0f} s; "
                "wait for the other lts command to finish, or point LTS_HOME at another folder"
            ) from exc
        except sqlite3.DatabaseError as exc:
            raise self._damaged(str(exc)) from exc

    def _damaged(self, what: str) -> LtsError:
        return LtsError(
            f"the workspace database {self.path} is damaged ({what}); move it aside to start a fresh cache "
            "(measurements in it will be taken again), or point LTS_HOME at another folder"
        )

    def _open(self) -> None:
        self._wal()
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LtsError(
                f"the workspace database {self.path} was written by a newer lts (schema {version}, this "
                f"lts reads {SCHEMA_VERSION}); upgrade lts, or point LTS_HOME at another folder"
            )
        for step in range(version, SCHEMA_VERSION):
            self._migrate(step)
        for table, columns in _COLUMNS.items():
            found = {row["name"] for row in self._conn.execute(f"PRAGMA table_info({table})")}
            if not found:
                raise self._damaged(f"table {table} is missing")
            if columns - found:
                raise self._damaged(f"table {table} has no column {', '.join(sorted(columns - found))}")

    def _wal(self) -> None:
        """WAL mode, kept in the file. Switching to it needs the file to itself, and SQLite does not wait
        for that: processes opening a new workspace at once (torchrun's) got "database is locked"."""
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _migrate(self, version: int) -> None:
        """One step, in one transaction: SQLite's DDL is transactional, so a failure changes nothing."""
        try:
            with self._transaction():
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {version + 1}")
        except sqlite3.DatabaseError as exc:
            raise LtsError(
                f"could not upgrade the workspace database {self.path} from schema {version} ({exc}); it was left "
                "unchanged: check that the file is writable, or move it aside to start a fresh cache"
            ) from exc

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

    @contextmanager
    def _reading(self, table: str) -> Iterator[None]:
        """Turns what damaged contents raise into the one error that names the file."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise self._damaged(str(exc)) from exc
        except (ValueError, TypeError, KeyError, LtsError) as exc:  # JSON that does not parse or fit
            raise self._damaged(f"a row of table {table} cannot be read: {exc}") from exc

    def _write(self, sql: str, values: tuple[Any, ...]) -> None:
        try:
            with self._transaction():
                self._conn.execute(sql, values)
        except sqlite3.DatabaseError as exc:
            raise self._damaged(str(exc)) from exc

    def put_arch(self, arch: Arch, source: str) -> None:
        """Remember an architecture so its id can be used everywhere (first source wins)."""
        self._write(
            "INSERT OR IGNORE INTO archs (archid, config, source, created) VALUES (?, ?, ?, ?)",
            (arch.archid, json.dumps(arch.to_dict()), source, time.time()),
        )

    def find_archs(self, prefix: str) -> list[Arch]:
        """Architectures whose id starts with `prefix` (a full id matches itself)."""
        with self._reading("archs"):
            rows = self._conn.execute(
                "SELECT config FROM archs WHERE archid >= ? AND archid < ? ORDER BY archid",
                (prefix, prefix + "\uffff"),
            ).fetchall()
            return [Arch(**json.loads(row["config"])) for row in rows]

    def get_measurement(self, key: str) -> Measurement | Damaged | None:
        """The cached measurement under `key`; Damaged when its row does not read as one (then it is
        as good as absent: the caller measures again, and the new result replaces the row)."""
        with self._reading("measurements"):
            row = self._conn.execute("SELECT key, archid, result FROM measurements WHERE key = ?", (key,)).fetchone()
        return _read(row) if row else None

    def put_measurement(
        self, key: str, archid: str, settings: SettingsKey, fingerprint: Fingerprint, result: JsonObject
    ) -> None:
        self._write(
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

    def measurements_on(self, fingerprint: Fingerprint) -> list[Measurement]:
        """Every readable cached measurement made on the machine with this fingerprint, oldest first."""
        with self._reading("measurements"):
            rows = self._conn.execute(
                "SELECT key, archid, result FROM measurements WHERE fingerprint = ? ORDER BY created",
                (json.dumps(fingerprint, sort_keys=True),),
            ).fetchall()
        return [m for m in map(_read, rows) if isinstance(m, Measurement)]

    def count_measurements(self) -> int:
        with self._reading("measurements"):
            return int(self._conn.execute("SELECT count(*) FROM measurements").fetchone()[0])

    def measurements_for(self, archid: str, fingerprint: Fingerprint | None = None) -> list[Measurement | Damaged]:
        """Cached results for `archid`, newest first; only this machine's when `fingerprint` is given."""
        with self._reading("measurements"):
            rows = self._conn.execute(
                "SELECT key, archid, fingerprint, result FROM measurements WHERE archid = ? ORDER BY created DESC",
                (archid,),
            ).fetchall()
        wanted = json.dumps(fingerprint, sort_keys=True) if fingerprint is not None else None
        return [_read(r) for r in rows if wanted is None or r["fingerprint"] == wanted]

    def damaged(self) -> list[Damaged]:
        """Every cached measurement whose row does not read as one (`lts cache check`)."""
        with self._reading("measurements"):
            rows = self._conn.execute("SELECT key, archid, result FROM measurements ORDER BY created").fetchall()
        return [m for m in map(_read, rows) if isinstance(m, Damaged)]

    def drop_measurements(self, keys: list[str]) -> None:
        try:
            with self._transaction():
                self._conn.executemany("DELETE FROM measurements WHERE key = ?", [(k,) for k in keys])
        except sqlite3.DatabaseError as exc:
            raise self._damaged(str(exc)) from exc


@dataclass(frozen=True)
class Damaged:
    """A cached measurement's row that does not read as a measurement, and why."""

    key: str
    archid: str
    problem: str


def _read(row: sqlite3.Row) -> Measurement | Damaged:
    """One row of the measurements table, every field checked; never raises for what a row holds."""
    try:
        return Measurement.from_dict(json.loads(row["result"]), f"the cached measurement of {row['archid']}")
    except (ValueError, TypeError, LtsError) as exc:
        return Damaged(row["key"], row["archid"], str(exc).splitlines()[0][:300])


def open_store() -> Store:
    from lts_cli import workspace

    return Store(workspace.db_path())


def known_archids(path: Path, prefix: str = "") -> list[str]:
    """Archids starting with `prefix`, read without changing the file (for shell completion); [] on any problem."""
    if not path.is_file():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0) as conn:
            rows = conn.execute(
                "SELECT archid FROM archs WHERE archid >= ? AND archid < ? ORDER BY archid", (prefix, prefix + "\uffff")
            ).fetchall()
    except sqlite3.Error:
        return []
    return [row[0] for row in rows]
