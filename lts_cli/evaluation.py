"""Architecture + settings -> measured objectives: cache first, then one ONNX build per architecture."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lts_cli.config import MeasureSettings
from lts_cli.errors import LtsError
from lts_cli.measuring import Progress
from lts_cli.search import Measured
from lts_cli.space import Arch
from lts_cli.store import Store

MIB = 2**20


@dataclass
class Measurement:
    """One architecture measured on one machine with one set of settings."""

    archid: str
    arch: dict[str, int]
    settings: dict[str, Any]
    fingerprint: dict[str, Any]
    non_embedding_params: int
    latency_s: float  # the objective: median of the timed runs
    latency_mean_s: float
    latency_cv: float
    latency_ci95_rel: float | None
    latency_min_s: float
    runs: int
    stop: str  # fixed | converged | max-trials
    memory_mib: float  # the objective: size of the single-file ONNX model
    file_bytes: int
    peak_rss_mib: float  # peak resident memory above the process baseline: weights + session + runs
    peak_rss_method: str
    build_s: float
    session_s: float
    timing_s: float
    load_avg: float  # 1-minute load average when the timing started (noise context)
    measured_at: str
    cached: bool = False

    @property
    def overhead_s(self) -> float:
        return self.build_s + self.session_s

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def cache_key(arch: Arch, settings: MeasureSettings, fingerprint: dict[str, Any]) -> str:
    from lts_cli.gpt2_onnx import GRAPH_VERSION

    payload = {
        "archid": arch.archid,
        "settings": dataclasses.asdict(settings),
        "fingerprint": fingerprint,
        "graph_version": GRAPH_VERSION,
    }
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def check_fits(arch: Arch, settings: MeasureSettings) -> None:
    """Refuse, before any work, settings the model cannot take or this machine cannot hold."""
    if settings.seq_len > arch.n_positions:
        raise LtsError(
            f"--seq-len {settings.seq_len} exceeds the model's n_positions ({arch.n_positions}); "
            f"use --seq-len {arch.n_positions} or less"
        )
    import psutil

    per_row = arch.vocab_size if settings.graph == "logits" else 0
    activations = (
        4
        * settings.batch_size
        * settings.seq_len
        * (4 * arch.d_model + arch.d_inner + 2 * arch.n_head * settings.seq_len + per_row)
    )
    need = 4 * arch.unique_params + 2 * activations
    available = psutil.virtual_memory().available
    if need > 0.9 * available:
        raise LtsError(
            f"measuring {arch.short()} needs about {need / 2**30:.1f} GiB of memory and "
            f"{available / 2**30:.1f} GiB is available; choose a smaller architecture, batch or --seq-len"
        )


class Evaluator:
    """Measures architectures with fixed settings, serving repeats from the workspace store."""

    def __init__(self, settings: MeasureSettings, store: Store | None = None, use_cache: bool = True) -> None:
        from lts_cli.measuring import fingerprint

        self.settings = settings
        self.store = store
        self.use_cache = use_cache and store is not None
        self.fingerprint = fingerprint()

    def cached(self, arch: Arch) -> Measurement | None:
        if not self.use_cache or self.store is None:
            return None
        found = self.store.get_measurement(cache_key(arch, self.settings, self.fingerprint))
        if found is None:
            return None
        measurement = Measurement.from_dict(found)
        measurement.cached = True
        return measurement

    def evaluate(self, arch: Arch, progress: Progress | None = None) -> Measurement:
        """The cached result when there is one (and caching is on), else a fresh, stored measurement."""
        hit = self.cached(arch)
        if hit is not None:
            return hit
        measurement = self.measure(arch, progress)
        if self.store is not None:
            self.store.put_measurement(
                cache_key(arch, self.settings, self.fingerprint),
                arch.archid,
                dataclasses.asdict(self.settings),
                self.fingerprint,
                measurement.to_dict(),
            )
        return measurement

    def measure(self, arch: Arch, progress: Progress | None = None) -> Measurement:
        """Build the graph once (random weights), then time it and size it; nothing is cached here."""
        import numpy as np

        from lts_cli import gpt2_onnx
        from lts_cli.measuring import PeakRss, latency_stats, time_runs
        from lts_cli.runtime import InMemorySession

        settings = self.settings
        check_fits(arch, settings)
        with PeakRss() as peak, tempfile.TemporaryDirectory(prefix="lts-eval-") as tmp:
            if progress:
                progress("build", 0, 1)
            start = time.perf_counter()
            model = gpt2_onnx.build(arch, graph=settings.graph)
            file_bytes = model.file_size()
            built = time.perf_counter()
            if progress:
                progress("session", 0, 1)
            session = InMemorySession(model, settings, Path(tmp))
            opened = time.perf_counter()
            rng = np.random.default_rng(0)
            ids = rng.integers(0, arch.vocab_size, size=(settings.batch_size, settings.seq_len), dtype=np.int64)
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
            times, stop = time_runs(lambda: session.run({"input_ids": ids}), settings, progress)
            timed = time.perf_counter()
        stats = latency_stats(times)
        return Measurement(
            archid=arch.archid,
            arch=arch.to_dict(),
            settings=dataclasses.asdict(settings),
            fingerprint=self.fingerprint,
            non_embedding_params=arch.non_embedding_params,
            latency_s=stats["median"],
            latency_mean_s=stats["mean"],
            latency_cv=stats["cv"],
            latency_ci95_rel=stats["ci95_rel"],
            latency_min_s=stats["min"],
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
        )


def profile(
    arch: Arch, settings: MeasureSettings, use_cache: bool = True, progress: Progress | None = None
) -> Measurement:
    """Measure one architecture on this machine (or return the cached result) and remember it."""
    from lts_cli.store import open_store

    with open_store() as store:
        evaluator = Evaluator(settings, store, use_cache=use_cache)
        measurement = evaluator.evaluate(arch, progress)
        store.put_arch(arch, source="profile")
    return measurement


class SearchEvaluator:
    """The search's evaluator: cached measurements mapped to objective values; archs remembered by id."""

    def __init__(
        self,
        settings: MeasureSettings,
        store: Store,
        source: str,
        use_cache: bool = True,
        progress: Progress | None = None,
    ) -> None:
        self.evaluator = Evaluator(settings, store, use_cache=use_cache)
        self.store = store
        self.source = source
        self.progress = progress

    def __call__(self, arch: Arch) -> Measured:
        m = self.evaluator.evaluate(arch, self.progress)
        self.store.put_arch(arch, self.source)
        values = {
            "non_embedding_params": float(m.non_embedding_params),
            "onnx_latency": m.latency_s,
            "onnx_memory": m.memory_mib,
            "peak_rss": m.peak_rss_mib,
        }
        return Measured(values, cached=m.cached, timing_s=0.0 if m.cached else m.timing_s)


def profile_export(folder: Path, settings: MeasureSettings, progress: Progress | None = None) -> dict[str, Any]:
    """An exported folder on this machine: prefill latency for `seq_len` tokens, then the latency of
    one decode step with a KV cache of `seq_len` tokens, file size and peak RSS (not cached)."""
    import numpy as np

    from lts_cli.measuring import PeakRss, fingerprint, latency_stats, time_runs
    from lts_cli.runtime import empty_past, feeds, next_past, read_info, session, session_options

    info = read_info(folder)
    if info is None:
        raise LtsError(f"{folder} is not an `lts export` folder (no export.json)")
    config = json.loads((folder / "config.json").read_text())
    if settings.seq_len >= config.get("n_positions", 1024):
        raise LtsError(
            f"--seq-len {settings.seq_len} leaves no room to decode within n_positions {config['n_positions']}"
        )
    with PeakRss() as peak:
        if progress:
            progress("session", 0, 1)
        start = time.perf_counter()
        sess = session(folder, options=session_options(settings))
        opened = time.perf_counter() - start
        ids = np.random.default_rng(0).integers(0, config["vocab_size"], size=(settings.batch_size, settings.seq_len))
        past = empty_past(sess, settings.batch_size) if info["past"] else None
        prefill_feeds = feeds(sess, ids, past, 0)
        prefill_times, prefill_stop = time_runs(lambda: sess.run(None, prefill_feeds), settings, progress)
        decode = None
        if info["past"]:
            cache = next_past(sess, sess.run(None, prefill_feeds))
            step = feeds(sess, ids[:, -1:], cache, settings.seq_len)
            decode_times, decode_stop = time_runs(lambda: sess.run(None, step), settings, progress)
            decode = {**latency_stats(decode_times), "stop": decode_stop, "context": settings.seq_len}
    return {
        "folder": str(folder),
        "export": {k: info[k] for k in ("source", "graph", "dtype", "untrained", "optimized")},
        "settings": dataclasses.asdict(settings),
        "fingerprint": fingerprint(),
        "file_mib": (folder / "model.onnx").stat().st_size / MIB,
        "session_s": opened,
        "prefill": {**latency_stats(prefill_times), "stop": prefill_stop, "tokens": settings.seq_len},
        "decode_per_token": decode,
        "peak_rss_mib": peak.delta_mib,
        "peak_rss_method": peak.method,
    }
