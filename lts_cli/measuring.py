"""Measuring one architecture on this machine: its ONNX graph built from the shapes (random weights),
an ONNX Runtime session, warm-up and timed runs (adaptive: until the mean's 95% CI is tight), peak
resident memory; the `Measurement` record and the key it is cached under. No cache here: the
measurement service (measurer.py) decides what to measure."""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lts_cli.errors import ConfigError, LtsError
from lts_cli.machine import Fingerprint
from lts_cli.settings import Kind, Measurement, MeasureSettings
from lts_cli.space import Arch
from lts_cli.views import JsonObject

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


@dataclass(frozen=True)
class LatencyStats:
    """Median (the objective: robust to the 2-3x outliers of a shared machine), mean, CV, CI."""

    median: float
    mean: float
    cv: float
    ci95_rel: float | None  # half-width of the 95% confidence interval of the mean, relative; None for 1 run
    min: float
    max: float
    n: int


def latency_stats(times: list[float]) -> LatencyStats:
    n = len(times)
    mean = statistics.fmean(times)
    sd = statistics.stdev(times) if n > 1 else 0.0
    ci = t_975(n - 1) * sd / math.sqrt(n) / mean if n > 1 and mean > 0 else None
    return LatencyStats(statistics.median(times), mean, sd / mean if mean > 0 else 0.0, ci, min(times), max(times), n)


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
            ci = latency_stats(times).ci95_rel
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


# ---- one architecture ---------------------------------------------------------------------------

MIB = 2**20


def cache_key(arch: Arch, settings: MeasureSettings, fingerprint: Fingerprint, kind: Kind = "prefill") -> str:
    """What a measurement is cached under: the architecture, the settings it depends on, the machine
    and the graph version (an architecture measured again with any of them changed is measured again)."""
    from lts_cli.gpt2_onnx import GRAPH_VERSION

    payload: JsonObject = {
        "archid": arch.archid,
        "settings": settings.key(kind),
        "fingerprint": fingerprint,
        "graph_version": GRAPH_VERSION,
    }
    if kind != "prefill":  # prefill keys stay as they were before there were other kinds
        payload["kind"] = kind
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def check_fits(arch: Arch, settings: MeasureSettings, kind: Kind = "prefill") -> None:
    """Refuse, before any work, settings the model cannot take or this machine cannot hold."""
    if kind == "prefill" and settings.seq_len > arch.n_positions:
        raise ConfigError(
            ["seq_len"],
            f"{{0}} {settings.seq_len} exceeds the model's n_positions ({arch.n_positions}); "
            f"use {{0}} {arch.n_positions} or less",
        )
    if kind == "decode" and settings.decode_context >= arch.n_positions:
        raise ConfigError(
            ["decode_context"],
            f"{{0}} {settings.decode_context} leaves no room for a new token within the model's n_positions "
            f"({arch.n_positions}); use {{0}} {arch.n_positions - 1} or less",
        )
    import psutil

    if kind == "prefill":
        per_row = arch.vocab_size if settings.full_logits else 0
        scores = 2 * arch.n_head * settings.seq_len
        activations = 4 * settings.batch_size * settings.seq_len * (4 * arch.d_model + arch.d_inner + scores + per_row)
    else:
        activations = 4 * settings.batch_size * (2 * arch.n_layer * (settings.decode_context + 1) * arch.d_model)
    need = 4 * arch.unique_params + 2 * activations
    available = psutil.virtual_memory().available
    if need > 0.9 * available:
        raise LtsError(
            f"measuring {arch.short()} needs about {need / 2**30:.1f} GiB of memory and "
            f"{available / 2**30:.1f} GiB is available; choose a smaller architecture, batch or sequence"
        )


def measure(
    arch: Arch,
    settings: MeasureSettings,
    kind: Kind,
    fingerprint: Fingerprint,
    progress: Progress | None = None,
) -> Measurement:
    """Build the graph once (random weights), then time it and size it; nothing is cached here."""
    import numpy as np

    from lts_cli import gpt2_onnx
    from lts_cli.runtime import InMemorySession, decode_step_feeds

    check_fits(arch, settings, kind)
    graph = settings.graph if kind == "prefill" else "causal-lm-with-past"
    label = (lambda stage, done, total: progress(f"{kind}: {stage}", done, total)) if progress else None
    with PeakRss() as peak, tempfile.TemporaryDirectory(prefix="lts-eval-") as tmp:
        if label:
            label("build", 0, 1)
        start = time.perf_counter()
        model = gpt2_onnx.build(arch, graph=graph)
        file_bytes = model.file_size()
        built = time.perf_counter()
        if label:
            label("session", 0, 1)
        session = InMemorySession(model, settings, Path(tmp))
        opened = time.perf_counter()
        if kind == "prefill":
            rng = np.random.default_rng(0)
            ids = rng.integers(0, arch.vocab_size, size=(settings.batch_size, settings.seq_len), dtype=np.int64)
            run = lambda: session.run({"input_ids": ids})  # noqa: E731
        else:
            step = decode_step_feeds(session.session, settings.batch_size, settings.decode_context)
            run = lambda: session.run_all(step)  # noqa: E731
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        times, stop = time_runs(run, settings, label)
        timed = time.perf_counter()
    stats = latency_stats(times)
    return Measurement(
        archid=arch.archid,
        arch=arch.to_dict(),
        settings=settings.key(kind),
        fingerprint=fingerprint,
        non_embedding_params=arch.non_embedding_params,
        latency_s=stats.median,
        latency_mean_s=stats.mean,
        latency_cv=stats.cv,
        latency_ci95_rel=stats.ci95_rel,
        latency_min_s=stats.min,
        runs=len(times),
        stop=stop,
        memory_mib=file_bytes / MIB,
        file_bytes=file_bytes,
        peak_rss_mib=peak.delta_mib,
        peak_rss_method=peak.method,
        build_s=built - start,
        session_s=opened - built,
        timing_s=timed - opened,
        load_avg=load,
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
        kind=kind,
    )
