"""The per-machine latency model and the screened search: the fit against known answers, rank
statistics by hand, and a screened search that only ever reports measured architectures."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from lts_cli import measurer, predictor, rankstats
from lts_cli.errors import TooFewMeasurements
from lts_cli.search_config import SearchConfig
from lts_cli.space import Arch, SearchSpace
from tests.conftest import assert_user_error, fake_measure, measurement

SETTINGS = SearchConfig().measure.key("prefill")


def test_nnls_finds_the_non_negative_solution() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((40, 5))
    truth = np.array([2.0, 0.0, 0.5, 0.0, 1.5])
    assert np.allclose(predictor.nnls(a, a @ truth), truth, atol=1e-9)
    # An unconstrained least-squares answer with a negative coefficient is clipped to the constrained optimum.
    b = a @ np.array([1.0, -1.0, 0.0, 0.0, 0.0])
    x = predictor.nnls(a, b)
    assert (x >= 0).all() and np.linalg.norm(a @ x - b) <= np.linalg.norm(
        a @ np.clip(np.linalg.lstsq(a, b, rcond=None)[0], 0, None) - b
    ) + 1e-12


def test_the_fit_recovers_known_coefficients() -> None:
    archs = [SearchSpace().sample(random.Random(i)) for i in range(40)]
    truth = np.array([7e-12, 9e-12, 1.6e-11, 0, 4e-9, 2e-10, 1e-3, 5e-3])
    rows = [(a, float(predictor.features(a, "prefill", SETTINGS) @ truth)) for a in archs]
    model = predictor.fit(rows, "prefill", SETTINGS)
    assert np.allclose(model.coef, truth, rtol=1e-6, atol=1e-15)
    assert model.expected.p90 < 1e-6 and model.margin == predictor.MIN_MARGIN
    held = predictor.held_out(rows, "prefill", SETTINGS, train=20)
    assert held.spearman == pytest.approx(1.0) and held.errors.p90 < 1e-6


def test_decode_features_are_fitted_too() -> None:
    settings = {**SearchConfig().measure.key("decode")}
    archs = [SearchSpace().sample(random.Random(i)) for i in range(30)]
    truth = np.array([3e-11, 2e-11, 1e-11, 0, 1e-9, 1e-10, 1e-4, 2e-4])
    rows = [(a, float(predictor.features(a, "decode", settings) @ truth)) for a in archs]
    assert np.allclose(predictor.fit(rows, "decode", settings).coef, truth, rtol=1e-6, atol=1e-15)


def test_too_few_measurements_say_how_many_more() -> None:
    rows = [(SearchSpace().sample(random.Random(i)), 1.0) for i in range(5)]
    with pytest.raises(TooFewMeasurements, match=r"needs 8 .* has 5: measure 3 more"):
        predictor.fit(rows, "prefill", SETTINGS)


def test_spearman_and_ranks_by_hand() -> None:
    assert rankstats.ranks([10, 30, 20, 20]) == [1.0, 4.0, 2.5, 2.5]
    assert rankstats.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # Ranks 1, 2, 3, 4 against 1, 4, 2.5, 2.5 (mean 2.5 both): covariance 2.25 - 0.75 = 1.5, sums of
    # squares 5 and 4.5, so the Pearson correlation of the ranks is 1.5 / sqrt(22.5) = 1 / sqrt(10).
    assert rankstats.spearman([1, 2, 3, 4], [1, 3, 2, 2]) == pytest.approx(1 / 10**0.5, rel=1e-12)


def test_timing_protocol_does_not_split_the_training_data() -> None:
    import dataclasses

    arch = Arch(n_layer=2, d_model=128, d_inner=256, n_head=2)
    base = measurement(arch, 0.2)
    fixed = dataclasses.replace(base, settings={**SETTINGS, "adaptive": False, "trials": 25})
    adaptive = dataclasses.replace(base, latency_s=0.3, settings={**SETTINGS, "adaptive": True})
    other = dataclasses.replace(base, settings={**SETTINGS, "seq_len": 192})
    rows = predictor.training_data([fixed, adaptive, other], "prefill", SETTINGS)
    assert rows == [(arch, 0.25)]  # one architecture, the median of its two comparable measurements


# ---- the screened search ------------------------------------------------------------------------

SCREENED = ["--generations", "4", "--screen", "--no-plots", "--seq-len", "256", "--max-params", "5e6"]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def install(calls: list[str], interrupt_after: int | None = None) -> None:
        monkeypatch.setattr(measurer, "measure", fake_measure(calls, interrupt_after))

    return install


def test_a_screened_search_reports_only_what_it_measured(run_cli, fake, lts_home: Path) -> None:
    calls: list[str] = []
    fake(calls)
    result = run_cli("search", *SCREENED, "--name", "s", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    run = lts_home / "runs" / "s"
    measured = {r["archid"]: r for r in csv.DictReader((run / "results.csv").open())}
    screened = list(csv.DictReader((run / "screened.csv").open()))
    assert screened and {r["latency_source"] for r in screened} == {"predicted"}
    assert {r["latency_source"] for r in measured.values()} == {"measured"}
    assert not {r["archid"] for r in screened} & set(measured)  # predicted ones are never measured rows
    assert {m["archid"] for m in summary["front"]} <= set(calls) == set(measured)  # the front: measured only
    for g in summary["generations_log"][1:]:
        s = g["screening"]
        assert s["proposed"] > s["measured"] > 0 and g["evaluated"] == s["measured"]
        assert s["models"]["onnx_latency"]["n"] >= predictor.MIN_MEASUREMENTS
        assert s["error"]["onnx_latency"]["n"] == s["measured"]  # each measured one was predicted first
    later = [r for r in measured.values() if r["iteration_num"] != "1"]
    assert all(float(r["predicted_onnx_latency"]) > 0 for r in later)


@pytest.mark.slow  # three screened searches
def test_a_resumed_screened_search_proposes_and_measures_the_same(
    run_cli, fake, lts_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference: list[str] = []
    fake(reference)
    monkeypatch.setenv("LTS_HOME", str(tmp_path / "reference"))
    expected = json.loads(run_cli("search", *SCREENED, "--name", "ref", "--json").stdout)

    monkeypatch.setenv("LTS_HOME", str(tmp_path / "fresh"))
    calls: list[str] = []
    fake(calls, interrupt_after=len(reference) - 3)  # in the last generation
    assert run_cli("search", *SCREENED, "--name", "cut").exit_code == 130
    fake(calls)
    resumed = run_cli("search", "--resume", "cut", "--json")
    assert resumed.exit_code == 0, resumed.stderr
    assert calls == reference
    final = json.loads(resumed.stdout)
    assert final["front"] == expected["front"]
    assert [g["screening"] for g in final["generations_log"]] == [g["screening"] for g in expected["generations_log"]]
    assert (tmp_path / "fresh" / "runs" / "cut" / "screened.csv").read_text() == (
        tmp_path / "reference" / "runs" / "ref" / "screened.csv"
    ).read_text()


def test_screening_needs_a_predictable_objective_set(run_cli) -> None:
    result = run_cli("search", "--screen", "--objectives", "non_embedding_params,peak_rss")
    assert_user_error(result, "--screen predicts latencies only", "peak_rss", code=2)
    assert_user_error(run_cli("search", "--screen-factor", "1"), "--screen-factor must be at least 2", code=2)


def test_predict_never_measures_and_says_what_it_lacks(run_cli, fake, lts_home: Path) -> None:
    calls: list[str] = []
    fake(calls)
    assert_user_error(run_cli("profile", "gpt2_a9e3", "--predict"), "needs 8 measurements", "measure 8 more")
    for i in range(10):
        arch = SearchSpace().sample(random.Random(i))
        spec = f"n_layer={arch.n_layer},d_model={arch.d_model},d_inner={arch.d_inner},n_head={arch.n_head}"
        assert run_cli("profile", "--arch", spec, "--objectives", "onnx_latency").exit_code == 0
    measured = len(calls)
    result = run_cli("profile", "gpt2_a9e3", "--predict", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    p = data["predicted"]["onnx_latency"]
    assert p["source"] == "predicted" and p["n"] == 10 and p["value"] > 0 and "decode_latency" in data["missing"]
    assert len(calls) == measured  # nothing was measured or cached by --predict
    shown = run_cli("predictor", "show", "--json")
    assert shown.exit_code == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["out_of_sample"]["n"] == 10 and Path(report["plot"]).read_bytes()[:4] == b"\x89PNG"
