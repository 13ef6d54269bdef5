"""Every stored value is checked where it is read (issue 18, class 2): a record of the wrong shape is
named, never a traceback, never the end of a listing, and a damaged measurement is measured again."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from lts_cli.gallery import find
from lts_cli.machine import fingerprint
from lts_cli.measuring import cache_key
from lts_cli.settings import MeasureSettings
from lts_cli.store import open_store
from tests.conftest import TINY_FAST, TINY_SEARCH, fake_measure, measurement

A = find("gpt2_a9e3")
B = find("gpt2_80fa")
SETTINGS = MeasureSettings(seq_len=192)
WRONG = ["{}", '{"median": "abc"}', "not json at all", "LATENCY_ABC"]


def damage(key: str, how: str) -> None:
    from lts_cli import workspace

    if how == "LATENCY_ABC":
        how = json.dumps({**measurement(A.arch, 0.1).to_dict(), "latency_s": "abc"})
    with sqlite3.connect(workspace.db_path()) as conn:
        conn.execute("UPDATE measurements SET result = ? WHERE key = ?", (how, key))


def cached(entry, latency: float) -> str:  # type: ignore[no-untyped-def]
    """Cache a measurement of a gallery architecture as lts would (prefill, seq 192); its key."""
    made = measurement(entry.arch, latency, SETTINGS, fingerprint())
    key = cache_key(entry.arch, SETTINGS, fingerprint())
    with open_store() as store:
        store.put_measurement(key, entry.arch.archid, made.settings, made.fingerprint, made.to_dict())
    return key


@pytest.fixture
def damaged_workspace(run_cli, lts_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One damaged record of each kind beside good ones."""
    from lts_cli import measurer

    monkeypatch.setattr(measurer, "measure", fake_measure([]))
    config = tmp_path / "s.yaml"
    config.write_text(TINY_SEARCH)
    for name in ("good", "bad-state", "bad-summary"):
        assert run_cli("search", "--config", str(config), "--name", name, "--no-plots").exit_code == 0
    (lts_home / "runs" / "bad-state" / "state.json").write_text('{"generation": "two"}')
    (lts_home / "runs" / "bad-summary" / "summary.json").write_text('{"front": 5}')
    damage(cached(A, 0.01), "LATENCY_ABC")
    cached(B, 0.02)
    (lts_home / "pulled").mkdir()
    (lts_home / "pulled" / f"{A.id}.json").write_text('{"id": 3}')
    results = lts_home / "proxy" / "results"
    results.mkdir(parents=True)
    (results / "abc.json").write_text('{"val_perplexity": "x"}')
    good = lts_home / "models" / "good-model"
    good.mkdir(parents=True)
    (good / "metrics.json").write_text('{"val_perplexity": 12.5}')
    bad = lts_home / "models" / "bad-model"
    bad.mkdir()
    (bad / "metrics.json").write_text('{"val_perplexity": "twelve"}')
    return lts_home


def no_traceback(result) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_every_listing_shows_the_rest(run_cli, damaged_workspace: Path) -> None:
    gallery = run_cli("gallery", "list")
    no_traceback(gallery)
    assert "1 cached measurement(s) could not be read" in gallery.stderr
    assert "0.0200@192" in gallery.stdout  # B's measurement, beside A's damaged one
    no_traceback(models := run_cli("models", "list", "--json"))
    by_id = {m["id"]: m for m in json.loads(models.stdout)}
    assert by_id["good-model"]["val_perplexity"] == 12.5 and by_id["bad-model"]["val_perplexity"] is None
    no_traceback(runs := run_cli("search", "list"))
    assert "good" in runs.stdout and "bad-state" in runs.stdout and "damaged" in runs.stdout
    resumed = run_cli("search", "--resume", "bad-state")
    assert resumed.exit_code == 1 and "Traceback" not in resumed.stderr
    assert "state.json is damaged" in resumed.stderr and "`lts search rm bad-state` removes this one" in resumed.stderr
    no_traceback(run_cli("cache"))
    report = run_cli("cache", "check", "--json")
    no_traceback(report)
    kinds = sorted(p["what"] for p in json.loads(report.stdout)["damaged"])
    assert kinds == ["measurement", "proxy result", "pulled model record", "search run", "search run"]
    repaired = run_cli("cache", "check", "--repair")
    no_traceback(repaired)
    assert json.loads(run_cli("cache", "check", "--json").stdout)["damaged"] == [
        p
        for p in json.loads(report.stdout)["damaged"]
        if p["what"] == "search run"  # runs are only named
    ]


@pytest.mark.parametrize("how", WRONG)
def test_a_damaged_measurement_is_measured_again(run_cli, lts_home: Path, monkeypatch, how: str) -> None:
    from lts_cli import measurer

    calls: list[str] = []
    monkeypatch.setattr(measurer, "measure", fake_measure(calls))
    args = ["profile", "--arch", "n_layer=1,d_model=32,d_inner=64,n_head=2,vocab_size=512,n_positions=64",
            *TINY_FAST, "--objectives", "onnx_latency", "--json"]  # fmt: skip
    assert run_cli(*args).exit_code == 0 and len(calls) == 1
    with open_store() as store:
        (row,) = store.measurements_on(fingerprint())
    damage(cache_key(__import__("lts_cli.space", fromlist=["Arch"]).Arch(**row.arch),
                     MeasureSettings(seq_len=16, trials=3, warmup=1), fingerprint()), how)  # fmt: skip
    again = run_cli(*args)
    no_traceback(again)
    assert len(calls) == 2 and "measuring L1 d32 ff64 h2 again, which replaces row" in again.stderr
    with open_store() as store:
        assert store.damaged() == [] and len(store.measurements_on(fingerprint())) == 1  # replaced
