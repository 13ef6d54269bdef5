"""`lts search` end to end on a tiny space with real measurements: outputs, cache, resume, bad input."""

from __future__ import annotations

import csv
import errno
import json
import shutil
from pathlib import Path

import pytest

from lts_cli import measurer, objectives, workspace
from lts_cli.errors import LtsError
from tests.conftest import (
    TINY_SEARCH,
    assert_user_error,
    fake_measure,
)
from tests.conftest import fake_measure as make


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_SEARCH)
    return path


@pytest.fixture
def count_measures(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = measurer.measure

    def counting(arch, settings, kind, fingerprint, progress=None):  # type: ignore[no-untyped-def]
        calls.append(arch.archid)
        return real(arch, settings, kind, fingerprint, progress)

    monkeypatch.setattr(measurer, "measure", counting)
    return calls


def search(run_cli, *args: str):  # type: ignore[no-untyped-def]
    return run_cli("search", *args)


@pytest.mark.slow  # measures with ONNX Runtime
def test_search_writes_every_output(run_cli, tiny: Path, lts_home: Path, count_measures: list[str]) -> None:
    result = search(run_cli, "--config", str(tiny), "--name", "t1", "--seed", "3")
    assert result.exit_code == 0, result.stderr
    run = lts_home / "runs" / "t1"
    for name in ("config.yaml", "state.json", "results.csv", "summary.json", "hypervolume.png"):
        assert (run / name).is_file(), name
    assert (run / "pareto_params_vs_latency.png").read_bytes()[:4] == b"\x89PNG"
    assert (run / "pareto_params_vs_memory.png").is_file()
    assert "seed: 3" in (run / "config.yaml").read_text()  # the effective config, flag included

    rows = list(csv.DictReader((run / "results.csv").open()))
    assert list(rows[0])[:9] == [
        "archid",
        "non_embedding_params",
        "onnx_latency",
        "onnx_memory",
        "parent",
        "parents",
        "iteration_num",
        "search_walltime_hours",
        "is_pareto",
    ]
    assert len(rows) == len(count_measures) == len(set(count_measures))
    summary = json.loads((run / "summary.json").read_text())
    front = {m["archid"] for m in summary["front"]}
    assert front == {r["archid"] for r in rows if r["is_pareto"] == "True"}
    assert {p.stem for p in (run / "pareto").glob("*.json")} == front
    config = json.loads(next((run / "pareto").glob("*.json")).read_text())
    assert config["arch_type"] == "gpt2" and "max_sequence_length" in config  # gallery-style
    assert len(summary["hypervolume"]["per_generation"]) == 3
    assert summary["status"] == "finished"
    # The front table and the outputs' location on stdout, one line per generation on stderr.
    assert "Pareto front of t1" in result.stdout and str(run) in result.stdout
    assert result.stderr.count("generation ") >= 3 and "hypervolume" in result.stderr

    # Pareto members are known by id everywhere.
    member = summary["front"][0]["archid"]
    profiled = run_cli("profile", member[:16], "--seq-len", "16", "--trials", "3", "--warmup", "1", "--json")
    assert profiled.exit_code == 0, profiled.stderr
    listed = json.loads(run_cli("gallery", "list", "--run", "t1", "--json").stdout)
    assert {r["archid"] for r in listed if r.get("run") == "t1"} == front

    # An identical search costs only cache look-ups.
    before = len(count_measures)
    again = search(run_cli, "--config", str(tiny), "--name", "t2", "--seed", "3", "--json")
    assert again.exit_code == 0
    assert len(count_measures) == before
    second = json.loads(again.stdout)
    assert second["timings"]["cached"] == second["timings"]["evaluated"] == len(rows)
    assert [m["archid"] for m in second["front"]] == [m["archid"] for m in summary["front"]]

    listing = json.loads(run_cli("search", "list", "--json").stdout)
    assert {r["name"] for r in listing} == {"t1", "t2"} and all(r["status"] == "finished" for r in listing)
    shown = run_cli("search", "show", "t1")
    assert shown.exit_code == 0 and "hypervolume per generation" in shown.stdout


def test_ctrl_c_then_resume(run_cli, tiny: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    reference_calls: list[str] = []
    monkeypatch.setattr(measurer, "measure", fake_measure(reference_calls))
    monkeypatch.setenv("LTS_HOME", str(tmp_path / "reference-home"))
    expected = json.loads(search(run_cli, "--config", str(tiny), "--name", "ref", "--no-plots", "--json").stdout)

    monkeypatch.setenv("LTS_HOME", str(tmp_path / "fresh-home"))  # an empty cache
    calls: list[str] = []
    monkeypatch.setattr(measurer, "measure", fake_measure(calls, interrupt_after=4))
    stopped = search(run_cli, "--config", str(tiny), "--name", "cut", "--no-plots")
    assert stopped.exit_code == 130
    assert "lts search --resume cut" in stopped.stderr and "Traceback" not in stopped.stderr
    partial = search(run_cli, "show", "cut")  # generation 1 (3 archs) finished before the interrupt
    assert partial.exit_code == 0 and "incomplete" in partial.stdout

    monkeypatch.setattr(measurer, "measure", fake_measure(calls))
    resumed = search(run_cli, "--resume", "cut", "--json")
    assert resumed.exit_code == 0, resumed.stderr
    final = json.loads(resumed.stdout)
    assert calls == reference_calls  # the same architectures, each measured once
    assert final["timings"]["cached"] == 0
    assert final["front"] == expected["front"]
    assert final["hypervolume"]["per_generation"] == expected["hypervolume"]["per_generation"]

    assert_user_error(search(run_cli, "--resume", "cut"), "has finished")
    assert_user_error(search(run_cli, "--resume", "nope"), "no search run named 'nope'")
    assert_user_error(search(run_cli, "--resume", "cut", "--seed", "2"), "drop --seed", code=2)


def test_bad_search_input(run_cli, tiny: Path, tmp_path: Path, lts_home: Path) -> None:
    assert_user_error(search(run_cli, "--generations", "0"), "--generations must be at least 1, got 0", code=2)
    assert_user_error(search(run_cli, "--init-models", "-3"), "--init-models must be at least 1", code=2)
    inverted = search(run_cli, "--min-params", "5e8", "--max-params", "1e8")
    assert_user_error(inverted, "--min-params (5e+08) is larger than --max-params", code=2)
    assert_user_error(
        search(run_cli, "--min-params", "2e9", "--max-params", "3e9"), "no architecture of the search space", code=2
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("generations: 2\npopulation: 5\n")
    assert_user_error(search(run_cli, "--config", str(bad)), "unknown key 'population'", str(bad))
    assert_user_error(search(run_cli, "--config", str(tiny), "--name", "../x"), "--name '../x'", code=2)
    assert search(run_cli, "--config", str(tiny), "--name", "dup", "--generations", "1", "--no-plots").exit_code == 0
    assert_user_error(search(run_cli, "--config", str(tiny), "--name", "dup"), "exists already")
    assert not (lts_home / "runs" / "x").exists()


def test_run_folder_deleted_mid_run(run_cli, tiny: Path, monkeypatch: pytest.MonkeyPatch, lts_home: Path) -> None:
    real = fake_measure([])

    def deleting(arch, settings, kind, fingerprint, progress=None):  # type: ignore[no-untyped-def]
        shutil.rmtree(lts_home / "runs" / "gone", ignore_errors=True)
        return real(arch, settings, kind, fingerprint, progress)

    monkeypatch.setattr(measurer, "measure", deleting)
    result = search(run_cli, "--config", str(tiny), "--name", "gone", "--no-plots")
    assert_user_error(result, "was deleted while the search was running")
    assert not (lts_home / "runs" / "gone").exists()  # not silently recreated


def test_full_disk_while_writing_a_generation(
    run_cli, tiny: Path, monkeypatch: pytest.MonkeyPatch, lts_home: Path
) -> None:
    real_write = workspace.atomic_write_bytes
    written: list[str] = []

    def filling(path: Path, data: bytes) -> None:
        written.append(path.name)
        if path.name == "results.csv" and written.count("results.csv") == 2:  # generation 2's outputs
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(workspace, "atomic_write_bytes", filling)
    monkeypatch.setattr(measurer, "measure", fake_measure([]))
    result = search(run_cli, "--config", str(tiny), "--name", "full", "--no-plots")
    assert_user_error(result, "No space left on device", "free some space", "lts search --resume full")
    run = lts_home / "runs" / "full"
    # Generation 1's outputs are intact; the state reaches the end of generation 2 and can be resumed.
    assert len(json.loads((run / "summary.json").read_text())["hypervolume"]["per_generation"]) == 1
    assert not list(run.glob(".*.tmp"))
    monkeypatch.setattr(workspace, "atomic_write_bytes", real_write)
    resumed = search(run_cli, "--resume", "full", "--json")
    assert resumed.exit_code == 0, resumed.stderr
    assert json.loads(resumed.stdout)["generations_done"] == 3


def test_an_impossible_constraint_leaves_no_run_folder(run_cli, lts_home: Path) -> None:
    result = run_cli("search", "--min-params", "1e6", "--max-params", "1.0001e6", "--name", "narrow")
    assert_user_error(result, "--min-params/--max-params", code=2)
    assert not (lts_home / "runs" / "narrow").exists()
    assert "narrow" not in run_cli("search", "list").stdout


def test_a_search_that_fails_before_evaluating_anything_frees_its_name(
    run_cli, lts_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "s.yaml"
    config.write_text(TINY_SEARCH)

    def failing(arch, settings, kind, fingerprint, progress=None):  # type: ignore[no-untyped-def]
        raise LtsError("the measuring machine is on fire")

    monkeypatch.setattr(measurer, "measure", failing)
    assert_user_error(run_cli("search", "--config", str(config), "--name", "n"), "on fire")
    assert not (lts_home / "runs" / "n").exists()
    monkeypatch.setattr(measurer, "measure", make([]))
    done = run_cli("search", "--config", str(config), "--name", "n", "--no-plots")
    assert done.exit_code == 0, done.stderr


@pytest.mark.parametrize("width", [40, 80])
def test_search_list_on_a_narrow_terminal(run_cli, tiny: Path, monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    """Issue 18: `lts search list` on a terminal narrower than its table lists each run as
    `header: value` lines; no value is cut with "…"."""
    import io

    from rich.console import Console

    from lts_cli.cli import common

    monkeypatch.setattr(measurer, "measure", fake_measure([]))
    done = search(run_cli, "--config", str(tiny), "--name", "a-run-with-a-rather-long-name", "--no-plots")
    assert done.exit_code == 0, done.stderr
    row = json.loads(run_cli("search", "list", "--json").stdout)[0]
    screen = io.StringIO()
    monkeypatch.setattr(common, "out", Console(file=screen, width=width, force_terminal=True, color_system=None))
    assert run_cli("search", "list").exit_code == 0
    text = screen.getvalue()
    assert "…" not in text, text
    shorts = ",".join(objectives.get(o).short for o in row["objectives"])
    whole = [row["name"], "finished", "3/3", str(row["evaluated"]), f"{row['hypervolume']:.4f}", shorts]
    for value in whole:
        assert value in text, (value, text)
    if width == 40:  # the table is wider than 40 columns: one `header: value` line per cell
        assert "hypervolume: " in text and "run: a-run-with-a-rather-long-name" in text
