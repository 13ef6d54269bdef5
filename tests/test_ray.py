"""`--executor ray` on a local Ray instance started by the tests (no cluster needed): a Ray search
proposes what a local one does whatever order results come back in, measures each candidate once,
retries a worker that died, records one that died twice as failed, refuses other versions and
other hardware, and resumes sending only what was not measured."""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lts_cli import distributed
from lts_cli.errors import LtsError
from lts_cli.machine import fingerprint
from lts_cli.measurer import Measurer, Where, evaluation
from lts_cli.predictor import Screener
from lts_cli.search import Measured, Search
from lts_cli.search_config import SearchConfig
from lts_cli.searching import same_machines
from lts_cli.settings import Measurement, MeasureSettings
from lts_cli.space import Arch, SearchSpace
from lts_cli.store import open_store
from tests.conftest import assert_user_error

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'lts-cli[ray]')")

SPACE = SearchSpace(n_layer=(1, 2, 3), d_model=(32, 64, 96), d_inner=(32, 64, 128), n_head=(2,), n_positions=64)
CONFIG = SearchConfig(
    space=SPACE,
    screen=False,
    min_params=0,
    generations=3,
    init_models=6,
    crossovers=2,
    random_mix=2,
    max_unseen=8,
    seed=3,
    measure=MeasureSettings(seq_len=32, trials=3, warmup=1),
)


@pytest.fixture(scope="module")
def cluster() -> Any:
    """One local Ray instance for the module, two measuring slots."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the fake tasks below, sent by value
    ray.init(
        address="local",
        num_cpus=2,
        resources={distributed.BENCH: 2},
        include_dashboard=False,
        logging_level="ERROR",
        log_to_driver=False,
    )
    yield ray
    ray.shutdown()


# ---- fake measurements: a known latency per architecture, results back in a random order --------


def fake_latency(arch: Arch) -> float:
    return 1e-3 + 2e-9 * arch.non_embedding_params + 1e-4 * arch.n_layer


def fake_measurement(arch: Arch, settings: MeasureSettings, fp: dict[str, Any]) -> Measurement:
    t = fake_latency(arch)
    return Measurement(
        archid=arch.archid, arch=arch.to_dict(), settings=settings.key("prefill"), fingerprint=fp,
        non_embedding_params=arch.non_embedding_params, latency_s=t, latency_mean_s=t, latency_cv=0.0,
        latency_ci95_rel=None, latency_min_s=t, runs=1, stop="fixed", memory_mib=0.0, file_bytes=0,
        peak_rss_mib=1.0, peak_rss_method="fake", build_s=0.0, session_s=0.0, timing_s=0.01, load_avg=0.0,
        measured_at="2026-11-29T00:00:00+00:00",
    )  # fmt: skip


def fake_task(arch: dict[str, int], settings: MeasureSettings, kinds: list[str], expected: dict[str, str]) -> dict:
    """Stands in for distributed.measure: sleeps a random while (so results finish out of order),
    writes a line per call to $LTS_TEST_CALLS, and dies (os._exit) as $LTS_TEST_DIE says."""
    a = Arch(**arch)
    calls = os.environ.get("LTS_TEST_CALLS")
    if calls:
        with open(calls, "a", encoding="utf-8") as f:
            f.write(a.archid + "\n")
    die = os.environ.get("LTS_TEST_DIE", "")
    if die.startswith("once:") and not os.path.exists(die[5:]):
        Path(die[5:]).write_text("died")
        os._exit(1)
    if die == f"always:{a.d_model}":
        os._exit(1)
    time.sleep(random.uniform(0.0, 0.15))
    fp = {**fingerprint(), **({"cpu": "another CPU"} if os.environ.get("LTS_TEST_OTHER_CPU") else {})}
    return {
        "host": "fake",
        "fingerprint": fp,
        "measurements": [fake_measurement(a, settings, fp).to_dict()],
        "seconds": 0.01,
    }


def probe_without_lts() -> dict:
    raise ModuleNotFoundError("No module named 'lts_cli.distributed'")  # a node with another lts-cli


def local_evaluate(arch: Arch) -> Measured:
    made = {"prefill": fake_measurement(arch, CONFIG.measure, fingerprint())}
    return Measured(evaluation(arch, CONFIG.measure, CONFIG.objectives, made).values)  # type: ignore[arg-type]


def executor(
    store: Any, use_cache: bool = True, target: str | None = None, runtime_env: dict[str, Any] | None = None
) -> Measurer:
    """The measurement service on the test's Ray instance, with the fake measuring task."""
    cluster = distributed.RayCluster(None, target, task=fake_task, runtime_env=runtime_env)
    where = Where("ray", target=target)
    return Measurer(CONFIG.measure, CONFIG.objectives, store, where, use_cache, "search:test", cluster=cluster)


def by_generation(state: Any) -> list[set[str]]:
    return [{r.archid for r in state.records if r.generation == g} for g in range(1, state.generation + 1)]


def _runtime_env(**env: str) -> dict[str, Any]:
    """Ray's runtime_env for the tasks: how the fake task learns what to do on the workers."""
    return {"env_vars": env}


# ---- the search ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_ray_search_proposes_and_measures_what_a_local_one_does(cluster: Any, tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    local = Search(CONFIG, local_evaluate).run()
    with open_store() as store:
        remote = executor(store, runtime_env=_runtime_env(LTS_TEST_CALLS=str(calls)))
        state = Search(CONFIG, remote).run()
    assert by_generation(state) == by_generation(local) and len(state.log) == 3
    assert [r.values for r in state.records] == [r.values for r in local.records]
    measured = calls.read_text().split()
    assert sorted(measured) == sorted(r.archid for r in state.records)  # each candidate sent once
    with open_store() as store:  # cached here under the worker's fingerprint: a second search sends nothing
        again = Search(CONFIG, executor(store, runtime_env=_runtime_env(LTS_TEST_CALLS=str(calls)))).run()
    assert all(r.cached for r in again.records) and calls.read_text().split() == measured


@pytest.mark.slow
def test_a_dead_worker_is_retried_and_one_that_dies_twice_is_recorded_as_failed(cluster: Any, tmp_path: Path) -> None:
    flag = tmp_path / "died-once"
    with open_store() as store:
        remote = executor(store, runtime_env=_runtime_env(LTS_TEST_DIE=f"once:{flag}"))
        state = Search(CONFIG, remote).run()
    assert (
        flag.exists() and not state.failed and len(state.records) == len(Search(CONFIG, local_evaluate).run().records)
    )
    with open_store() as store:
        remote = executor(store, use_cache=False, runtime_env=_runtime_env(LTS_TEST_DIE="always:96"))
        state = Search(CONFIG, remote).run()
    assert state.failed and all(Arch(**f.arch).d_model == 96 for f in state.failed)
    assert all("retry" in f.reason for f in state.failed)
    assert not any(r.arch["d_model"] == 96 for r in state.records)  # failed ones are not on any front
    failed = {f.archid for f in state.failed}
    assert len(failed) == len(state.failed)  # and never proposed again


@pytest.mark.slow
def test_an_interrupted_ray_search_resends_only_what_was_not_measured(cluster: Any, tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    env = _runtime_env(LTS_TEST_CALLS=str(calls))
    uninterrupted = Search(CONFIG, local_evaluate).run()
    saved: dict[str, Any] = {}

    def stop_after_four(event: str, state: Any, data: dict[str, Any]) -> None:
        if event == "arch_done":
            saved["state"] = json.loads(json.dumps(state.to_dict()))  # what the run folder would hold
            if len(state.records) == 4:
                raise KeyboardInterrupt

    with open_store() as store:
        with pytest.raises(KeyboardInterrupt):
            Search(CONFIG, executor(store, runtime_env=env)).run(on_event=stop_after_four)
        from lts_cli.search_state import SearchState

        resumed = Search(CONFIG, executor(store, runtime_env=env)).run(SearchState.from_dict(saved["state"]))
    assert by_generation(resumed) == by_generation(uninterrupted)
    sent = calls.read_text().split()
    again = [a for a in set(sent) if sent.count(a) > 1]
    assert set(sent) == {r.archid for r in resumed.records}
    assert len(again) <= 2  # only what was in flight (two slots) when it was interrupted


# ---- refusals -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_other_versions_and_other_hardware_are_refused(cluster: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real = distributed.versions()
    with monkeypatch.context() as m, open_store() as store:
        m.setattr(distributed, "versions", lambda: {**real, "lts": "0.0.0"})
        with pytest.raises(LtsError, match=r"runs other versions \(lts 0\.1\.0 there, 0\.0\.0 here\)"):
            executor(store)
    with monkeypatch.context() as m, open_store() as store:
        m.setattr(distributed, "probe", probe_without_lts)
        with pytest.raises(LtsError, match=r"could not run lts there \(No module named 'lts_cli.distributed'\)"):
            executor(store)
    with open_store() as store:
        remote = executor(store, runtime_env=_runtime_env(LTS_TEST_OTHER_CPU="1"))
        with pytest.raises(LtsError, match="a machine the search did not start with"):
            Search(CONFIG, remote).run()
    arm = {**fingerprint(), "cpu": "ARM Cortex-A76"}
    two = [
        {"host": "a", "versions": real, "fingerprint": fingerprint(), "node": "n1", "slots": 1},
        {"host": "b", "versions": real, "fingerprint": arm, "node": "n2", "slots": 1},
    ]
    monkeypatch.setattr(distributed.RayCluster, "_probe", lambda self: two)
    with open_store() as store:
        with pytest.raises(LtsError, match=r"are different machines .*--target LABEL"):
            executor(store)
        assert executor(store, target="edge").cluster.slots == 2  # a named target: the user declared them alike


def test_a_run_resumes_only_on_the_machines_it_started_on() -> None:
    here = {"fingerprints": [fingerprint()], "target": None}
    assert same_machines("r", None, here) == here  # a run from before lts recorded it
    assert same_machines("r", here, here) == here
    elsewhere = {"fingerprints": [{**fingerprint(), "cpu": "ARM Cortex-A76"}], "target": None}
    with pytest.raises(LtsError, match=r"measured on .* resume it where it started"):
        same_machines("r", here, elsewhere)
    with pytest.raises(LtsError, match="was measured with no --target; resume it the same way"):
        same_machines("r", here, {**elsewhere, "target": "edge"})
    labelled = {"fingerprints": [fingerprint()], "target": "edge"}
    grown = same_machines("r", labelled, {**elsewhere, "target": "edge"})
    assert len(grown["fingerprints"]) == 2


def test_executor_flags(run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_user_error(run_cli("search", "--target", "edge"), "--target goes with --executor ray", code=2)
    assert_user_error(run_cli("profile", "gpt2_a9e3", "--ray-address", "h:6379"), "--ray-address goes with", code=2)
    assert_user_error(run_cli("profile", "gpt2_a9e3", "--executor", "ray", "--predict"), "drop --executor ray", code=2)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    assert_user_error(
        run_cli("profile", "gpt2_a9e3", "--executor", "RAY"),
        "--executor ray needs Ray: pip install 'lts-cli[ray]'",
        code=2,
    )


TINY_SEARCH = """
screen: false
min_params: 0
generations: 2
init_models: 4
crossovers: 1
random_mix: 1
max_unseen: 3
space: {n_layer: [1, 2], d_model: [32, 64], d_inner: [32, 64], n_head: [2], n_positions: 64}
measure: {seq_len: 32, trials: 3, warmup: 1}
"""


@pytest.mark.slow
def test_lts_search_and_profile_measure_on_ray_slots(cluster: Any, run_cli, tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_SEARCH)
    result = run_cli("search", "--config", str(config), "--executor", "ray", "--name", "r", "--no-plots", "--json")
    assert result.exit_code == 0, result.stderr
    assert "2 slot(s) on 1 node(s)" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["machines"] == {"fingerprints": [fingerprint()], "target": None} and not summary["failed"]
    with open_store() as store:
        cached = store.measurements_on(fingerprint())
    archids = [m.archid for m in cached]
    assert len(archids) == len(set(archids)) == summary["timings"]["evaluated"]  # each measured once, real ORT
    assert all(m.latency_s > 0 and m.runs >= 1 for m in cached)
    quick = ["--seq-len", "32", "--trials", "3", "--warmup", "1", "--objectives", "onnx_latency", "--json"]
    first = run_cli("profile", archids[0], "--executor", "ray", "--no-cache", *quick)
    assert first.exit_code == 0, first.stderr
    assert "measured on " in first.stderr and json.loads(first.stdout)["prefill"]["latency_s"] > 0
    again = run_cli("profile", archids[0], "--executor", "ray", *quick)
    assert again.exit_code == 0 and json.loads(again.stdout)["cached"] is True


@pytest.mark.slow
def test_a_screened_search_on_ray_learns_from_the_workers_measurements(cluster: Any) -> None:
    import dataclasses

    config = dataclasses.replace(CONFIG, screen=True, generations=4, screen_factor=3)
    with open_store() as store:
        remote = executor(store)
        state = Search(config, remote, screener=Screener(remote)).run()
    screened = [g.screening for g in state.log if g.screening and "models" in g.screening]
    assert screened and screened[-1]["models"]["onnx_latency"]["n"] >= 8  # fitted on what the workers measured
    assert not {x.archid for x in state.screened} & {r.archid for r in state.records}


def test_a_cluster_that_is_not_there_fails_in_seconds(run_cli, lts_home: Path) -> None:
    """Issue 18: nothing listens at the address: one line within 15 s, no run folder left behind."""
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # closed again below: nothing listens there
    start = time.perf_counter()
    for args in (["search", "--generations", "1"], ["profile", "gpt2_a9e3", "--seq-len", "32"]):
        result = run_cli(*args, "--executor", "ray", "--ray-address", f"127.0.0.1:{port}")
        assert_user_error(result, f"no Ray cluster answers at 127.0.0.1:{port}", "ray start --head", code=2)
    assert time.perf_counter() - start < 15
    assert not (lts_home / "runs").exists() or not any((lts_home / "runs").iterdir())
    assert_user_error(run_cli("search", "--executor", "ray", "--ray-address", "nowhere"), "is not HOST:PORT", code=2)


def test_rays_own_threads_print_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """Ray prints "(raylet) A worker died ..." from its thread `ray_listen_error_messages`: never on stdout."""
    import sys
    import threading

    original = sys.stdout
    try:
        distributed._ray_output_to_stderr()
        thread = threading.Thread(target=lambda: print("(raylet) A worker died"), name="ray_listen_error_messages")
        thread.start()
        thread.join()
        print('{"json": true}')
    finally:
        sys.stdout = original
    captured = capsys.readouterr()
    assert captured.out == '{"json": true}\n' and "(raylet) A worker died" in captured.err
