"""Timing statistics, adaptive timed runs and peak resident memory (pure Python; psutil on demand)."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

from lts_cli.config import MeasureSettings

Progress = Callable[[str, int, int], None]  # (stage, done, total)


# Two-sided 95% Student-t quantiles for 1..30 degrees of freedom (standard table).
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def t_975(dof: int) -> float:
    """Two-sided 95% Student-t quantile: the table up to 30, a Cornish-Fisher expansion beyond."""
    if dof <= len(_T975):
        return _T975[dof - 1]
    z, v = 1.959964, float(dof)
    return z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)


def latency_stats(times: list[float]) -> dict[str, Any]:
    """Median (the objective: robust to the 2-3x outliers of a shared machine), mean, CV, CI."""
    n = len(times)
    mean = statistics.fmean(times)
    sd = statistics.stdev(times) if n > 1 else 0.0
    ci = t_975(n - 1) * sd / math.sqrt(n) / mean if n > 1 and mean > 0 else None
    return {
        "median": statistics.median(times),
        "mean": mean,
        "cv": sd / mean if mean > 0 else 0.0,
        "ci95_rel": ci,  # half-width of the 95% confidence interval of the mean, relative; None for 1 run
        "min": min(times),
        "max": max(times),
        "n": n,
    }


def time_runs(
    run: Callable[[], object], settings: MeasureSettings, progress: Progress | None = None
) -> tuple[list[float], str]:
    """Warm up, then time runs one by one; adaptive mode stops once the mean's 95% CI is tight enough."""
    for i in range(settings.warmup):
        if progress:
            progress("warm-up", i, settings.warmup)
        run()
    times: list[float] = []
    for i in range(settings.trials):
        if progress:
            progress("timing", i, settings.trials)
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
        if settings.adaptive and len(times) >= max(settings.min_trials, 2):
            ci = latency_stats(times)["ci95_rel"]
            if ci is not None and ci <= settings.target_ci:
                return times, "converged"
    return times, ("max-trials" if settings.adaptive else "fixed")


class PeakRss:
    """Peak resident memory above the level at entry, for what runs inside the `with` block.

    On Linux the kernel's high-water mark is reset at entry (/proc/self/clear_refs), so the figure is
    exact; elsewhere it falls back to the process-lifetime peak, an upper bound (see `method`).
    """

    def __enter__(self) -> PeakRss:
        self.method = "vmhwm"
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            self.method = "ru_maxrss"
        self.start_mib = _rss_mib()
        self.peak_mib = self.start_mib
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak_mib = max(self.start_mib, _process_peak_mib(self.method))

    @property
    def delta_mib(self) -> float:
        return self.peak_mib - self.start_mib


def _rss_mib() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


def _process_peak_mib(method: str) -> float:
    if method == "vmhwm":
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024
