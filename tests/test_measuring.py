"""Latency statistics, the adaptive stopping rule and the peak-memory probe."""

from __future__ import annotations

import statistics

import pytest

from lts_cli import machine, measuring
from lts_cli.measuring import PeakRss, latency_stats, t_975, time_runs
from lts_cli.settings import MeasureSettings


def test_t_quantiles_match_the_table() -> None:
    # Student t, two-sided 95%: standard table values.
    for dof, table in [(3, 3.182), (4, 2.776), (24, 2.064), (31, 2.040), (40, 2.021), (60, 2.000), (120, 1.980)]:
        assert t_975(dof) == pytest.approx(table, rel=1e-3)


def test_latency_stats_by_hand() -> None:
    times = [0.10, 0.12, 0.11, 0.30, 0.10]
    stats = latency_stats(times)
    assert stats.median == 0.11
    assert stats.mean == pytest.approx(0.146)
    sd = ((0.046**2 + 0.026**2 + 0.036**2 + 0.154**2 + 0.046**2) / 4) ** 0.5
    assert stats.cv == pytest.approx(sd / 0.146)
    assert stats.ci95_rel == pytest.approx(t_975(4) * sd / 5**0.5 / 0.146)
    assert (stats.min, stats.max, stats.n) == (0.10, 0.30, 5)
    assert latency_stats([0.2]).ci95_rel is None


def fake_clock(monkeypatch: pytest.MonkeyPatch, durations: list[float]) -> list[int]:
    """perf_counter that advances by the given run durations; returns a list counting runs."""
    now = [0.0]
    calls = [0]
    it = iter(durations)

    def run() -> None:
        calls[0] += 1
        now[0] += next(it)

    monkeypatch.setattr(measuring.time, "perf_counter", lambda: now[0])
    fake_clock.run = run  # type: ignore[attr-defined]
    return calls


def test_fixed_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_clock(monkeypatch, [9.0, 9.0] + [1.0] * 10)
    times, stop = time_runs(fake_clock.run, MeasureSettings(warmup=2, trials=10))  # type: ignore[attr-defined]
    assert calls[0] == 12 and stop == "fixed"
    assert times == [1.0] * 10  # warm-up runs are not timed


def test_adaptive_stops_when_the_interval_is_tight(monkeypatch: pytest.MonkeyPatch) -> None:
    durations = [1.0, 1.01, 0.99, 1.0, 1.0] + [1.0] * 20
    fake_clock(monkeypatch, [5.0, *durations])
    settings = MeasureSettings(warmup=1, trials=25, adaptive=True, min_trials=5, target_ci=0.03)
    times, stop = time_runs(fake_clock.run, settings)  # type: ignore[attr-defined]
    assert (len(times), stop) == (5, "converged")


def test_adaptive_gives_up_at_the_maximum(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_clock(monkeypatch, [1.0, 2.0] * 10)
    settings = MeasureSettings(warmup=0, trials=8, adaptive=True, min_trials=3, target_ci=0.01)
    times, stop = time_runs(fake_clock.run, settings)  # type: ignore[attr-defined]
    assert (len(times), stop) == (8, "max-trials")
    assert statistics.median(times) == 1.5


def test_peak_rss_sees_a_transient_allocation() -> None:
    import mmap

    with PeakRss() as peak:
        # 64 MiB of fresh pages, touched, then given back (an anonymous mapping, so that memory the
        # allocator kept from earlier tests cannot serve it without raising the resident set).
        block = mmap.mmap(-1, 64 * 2**20)
        block.write(b"\x01" * len(block))
        block.close()
    assert peak.method in ("vmhwm", "ru_maxrss")
    assert peak.delta_mib > 60


def test_fingerprint_names_the_machine() -> None:
    fp = machine.fingerprint()
    assert set(fp) == {"cpu", "cores", "machine", "onnxruntime"}
    assert fp["cores"] >= 1 and fp["cpu"]
