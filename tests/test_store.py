"""The SQLite store: round trips, concurrent writers, corrupt and newer-schema files."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from lts_cli.errors import LtsError
from lts_cli.space import Arch
from lts_cli.store import SCHEMA_VERSION, Damaged, Store
from tests.conftest import assert_user_error, measurement

ARCH = Arch(n_layer=2, d_model=64, d_inner=128, n_head=2)


def test_round_trip(tmp_path: Path) -> None:
    made = measurement(ARCH, 0.5, fingerprint={"cpu": "x"})
    with Store(tmp_path / "lts.db") as store:
        store.put_arch(ARCH, "test")
        store.put_arch(ARCH, "again")  # idempotent
        assert store.find_archs(ARCH.archid[:9]) == [ARCH]
        assert store.find_archs("gpt2_ffff") == []
        store.put_measurement("k1", ARCH.archid, made.settings, {"cpu": "x"}, made.to_dict())
        assert store.get_measurement("k1") == made
        assert store.get_measurement("k2") is None
        assert store.measurements_for(ARCH.archid, {"cpu": "x"}) == [made]
        assert store.measurements_for(ARCH.archid, {"cpu": "y"}) == []
    with Store(tmp_path / "lts.db") as again:  # persisted
        assert again.get_measurement("k1") == made


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        ("{broken", "Expecting property name"),  # not JSON
        ("{}", "missing archid"),  # JSON of the wrong shape (issue 18)
        ('{"median": "abc"}', "missing archid"),
        ("LATENCY_ABC", "latency_s must be a number, got 'abc'"),
        ("[1, 2]", "is not a JSON object"),
    ],
)
def test_a_damaged_row_is_as_good_as_absent(tmp_path: Path, result: str, problem: str) -> None:
    good, other = measurement(ARCH, 0.5), measurement(Arch(1, 64, 128, 2), 0.25)
    if result == "LATENCY_ABC":
        result = json.dumps({**good.to_dict(), "latency_s": "abc"})
    with Store(tmp_path / "lts.db") as store:
        store.put_measurement("bad", ARCH.archid, {}, {}, good.to_dict())
        store.put_measurement("good", other.archid, {}, {}, other.to_dict())
    with sqlite3.connect(tmp_path / "lts.db") as conn:
        conn.execute("UPDATE measurements SET result = ? WHERE key = 'bad'", (result,))
    with Store(tmp_path / "lts.db") as store:
        damaged = store.get_measurement("bad")
        assert isinstance(damaged, Damaged) and problem in damaged.problem and damaged.archid == ARCH.archid
        assert store.measurements_on({}) == [other]  # the others still read
        assert store.damaged() == [damaged]
        store.drop_measurements([damaged.key])
        assert store.damaged() == [] and store.get_measurement("bad") is None


def _writer(path: str, worker: int, count: int) -> None:
    with Store(Path(path)) as store:
        for i in range(count):
            store.put_measurement(f"w{worker}-{i}", f"gpt2_{worker}", {"i": i}, {}, {"i": i, "worker": worker})


def test_two_processes_writing_at_once_do_not_corrupt_it(tmp_path: Path) -> None:
    path = tmp_path / "lts.db"
    Store(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), w, 100)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM measurements").fetchone()[0] == 200


def test_opening_a_new_workspace_another_process_is_writing(tmp_path: Path) -> None:
    """As `torchrun` starts them, processes open a workspace that does not exist yet at once. Switching
    the new file to WAL found it busy and failed at once ("damaged (database is locked)"; 4 of 10 starts
    of 4 processes here): it must wait for the other writer."""
    import threading

    path = tmp_path / "lts.db"
    other = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process, creating the file
    threading.Timer(0.5, lambda: other.execute("COMMIT")).start()
    with Store(path) as store:
        store.put_arch(ARCH, "test")
    other.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    Store(path).close()  # opened again: nothing to migrate


def test_a_workspace_locked_too_long_is_not_called_damaged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lts_cli.store.LOCK_WAIT_S", 0.3)
    path = tmp_path / "lts.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # and never done
    with pytest.raises(LtsError, match=r"stayed locked by another process for 0 s; wait for the other") as caught:
        Store(path)
    assert "damaged" not in str(caught.value)
    other.close()


def test_corrupt_file_is_named_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "lts.db"
    garbage = b"this is not a database" * 100
    path.write_bytes(garbage)
    with pytest.raises(LtsError, match=f"workspace database {path} is damaged.*move it aside"):
        Store(path)
    assert path.read_bytes() == garbage


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lts.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(LtsError, match="written by a newer lts"):
        Store(path)


def _filled(path: Path) -> None:
    made = measurement(ARCH, 0.5, fingerprint={"cpu": "x"})
    with Store(path) as store:
        store.put_arch(ARCH, "test")
        store.put_measurement("k1", ARCH.archid, made.settings, {"cpu": "x"}, made.to_dict())


def _unchanged(path: Path, action) -> str:  # type: ignore[no-untyped-def]
    before = path.read_bytes()
    with pytest.raises(LtsError) as info:
        action()
    assert path.read_bytes() == before
    message = str(info.value)
    assert str(path) in message and "move it aside" in message
    return message


def test_an_arch_row_that_does_not_parse_is_named_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "lts.db"
    _filled(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE archs SET config = '[1, 2]'")
    store = Store(path)
    assert "table archs" in _unchanged(path, lambda: store.find_archs("gpt2_"))


def test_a_dropped_table_is_named(tmp_path: Path, run_cli, lts_home: Path) -> None:
    lts_home.mkdir()
    path = lts_home / "lts.db"
    _filled(path)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE measurements")
    assert "table measurements is missing" in _unchanged(path, lambda: Store(path))
    assert_user_error(run_cli("gallery", "list"), str(path), "table measurements is missing", "move it aside")


V1_SCHEMA = """
CREATE TABLE archs (archid TEXT PRIMARY KEY, config TEXT NOT NULL, source TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE measurements (key TEXT PRIMARY KEY, archid TEXT NOT NULL, settings TEXT NOT NULL,
    fingerprint TEXT NOT NULL, result TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX measurements_archid ON measurements (archid);
PRAGMA user_version = 1;
"""


def test_an_older_schema_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "lts.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_SCHEMA)
        made = measurement(ARCH, 1.5)
        conn.execute("INSERT INTO measurements VALUES ('k1', 'a', '{}', '{}', ?, 0)", (json.dumps(made.to_dict()),))
    with Store(path) as store:
        assert store.get_measurement("k1") == made
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(measurements)")}
        assert "measurements_machine" in indexes


def test_a_failed_migration_leaves_the_file_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lts_cli import store

    path = tmp_path / "lts.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_SCHEMA)
    monkeypatch.setitem(
        store.MIGRATIONS, 1, "CREATE INDEX x ON measurements (archid); CREATE INDEX broken ON nowhere (x)"
    )
    with pytest.raises(LtsError, match=r"could not upgrade .* from schema 1.*left unchanged"):
        Store(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert "x" not in {row[1] for row in conn.execute("PRAGMA index_list(measurements)")}
