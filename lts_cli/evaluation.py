"""Architectures -> objective values on this machine: exact ones computed, measured ones taken from the
workspace cache or measured once (one ONNX graph built per kind of measurement)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

from lts_cli import objectives as registry
from lts_cli.config import MeasureSettings
from lts_cli.errors import LtsError
from lts_cli.measuring import Progress
from lts_cli.search import Measured
from lts_cli.space import Arch
from lts_cli.store import Store

MIB = 2**20
Kind = Literal["prefill", "decode"]


@dataclass
class Measurement:
    """One architecture measured on one machine with one set of settings.

    kind "prefill": the published protocol, `seq_len` tokens through the `graph` graph.
    kind "decode": one new token with a KV cache of `decode_context` tokens (the with-past graph).
    """

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
    memory_mib: float  # size of the single-file ONNX model of the measured graph
    file_bytes: int
    peak_rss_mib: float  # peak resident memory above the process baseline: weights + session + runs
    peak_rss_method: str
    build_s: float
    session_s: float
    timing_s: float
    load_avg: float  # 1-minute load average when the timing started (noise context)
    measured_at: str
    cached: bool = False
    kind: Kind = "prefill"

    @property
    def overhead_s(self) -> float:
        return self.build_s + self.session_s

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def cache_key(arch: Arch, settings: MeasureSettings, fingerprint: dict[str, Any], kind: Kind = "prefill") -> str:
    from lts_cli.gpt2_onnx import GRAPH_VERSION

    payload: dict[str, Any] = {
        "archid": arch.archid,
        "settings": settings.prefill_key() if kind == "prefill" else settings.decode_key(),
        "fingerprint": fingerprint,
        "graph_version": GRAPH_VERSION,
    }
    if kind != "prefill":  # prefill keys stay as they were before there were other kinds
        payload["kind"] = kind
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def check_fits(arch: Arch, settings: MeasureSettings, kind: Kind = "prefill") -> None:
    """Refuse, before any work, settings the model cannot take or this machine cannot hold."""
    if kind == "prefill" and settings.seq_len > arch.n_positions:
        raise LtsError(
            f"--seq-len {settings.seq_len} exceeds the model's n_positions ({arch.n_positions}); "
            f"use --seq-len {arch.n_positions} or less"
        )
    if kind == "decode" and settings.decode_context >= arch.n_positions:
        raise LtsError(
            f"--decode-context {settings.decode_context} leaves no room for a new token within the model's "
            f"n_positions ({arch.n_positions}); use --decode-context {arch.n_positions - 1} or less"
        )
    import psutil

    if kind == "prefill":
        per_row = arch.vocab_size if settings.graph == "logits" else 0
        scores = 2 * arch.n_head * settings.seq_len
        activations = 4 * settings.batch_size * settings.seq_len * (4 * arch.d_model + arch.d_inner + scores + per_row)
    else:
        activations = 4 * settings.batch_size * (2 * arch.n_layer * (settings.decode_context + 1) * arch.d_model)
    need = 4 * arch.unique_params + 2 * activations
    available = psutil.virtual_memory().available
    if need > 0.9 * available:
        raise LtsError(
            f"measuring {arch.short()} needs about {need / 2**30:.1f} GiB of memory and "
            f"{available / 2**30:.1f} GiB is available; choose a smaller architecture, batch or --seq-len"
        )


class Evaluator:
    """Measures architectures with fixed settings, serving repeats from the workspace store."""

    def __init__(
        self,
        settings: MeasureSettings,
        store: Store | None = None,
        use_cache: bool = True,
        fingerprint: dict[str, Any] | None = None,
    ) -> None:
        """`fingerprint`: the machine the measurements are made on (default: this one)."""
        from lts_cli import machine

        self.settings = settings
        self.store = store
        self.use_cache = use_cache and store is not None
        self.fingerprint = fingerprint or machine.fingerprint()

    def cached(self, arch: Arch, kind: Kind = "prefill") -> Measurement | None:
        if not self.use_cache or self.store is None:
            return None
        found = self.store.get_measurement(cache_key(arch, self.settings, self.fingerprint, kind))
        if found is None:
            return None
        measurement = Measurement.from_dict(found)
        measurement.cached = True
        return measurement

    def evaluate(self, arch: Arch, kind: Kind = "prefill", progress: Progress | None = None) -> Measurement:
        """The cached result when there is one (and caching is on), else a fresh, stored measurement."""
        hit = self.cached(arch, kind)
        if hit is not None:
            return hit
        measurement = self.measure(arch, kind, progress)
        self.remember(arch, measurement)
        return measurement

    def remember(self, arch: Arch, measurement: Measurement) -> None:
        """Store a fresh measurement of `arch` (made here, or on a machine with this fingerprint)."""
        if self.store is not None:
            self.store.put_measurement(
                cache_key(arch, self.settings, self.fingerprint, measurement.kind),
                arch.archid,
                measurement.settings,
                self.fingerprint,
                measurement.to_dict(),
            )

    def measure(self, arch: Arch, kind: Kind = "prefill", progress: Progress | None = None) -> Measurement:
        """Build the graph once (random weights), then time it and size it; nothing is cached here."""
        import numpy as np

        from lts_cli import gpt2_onnx
        from lts_cli.measuring import PeakRss, latency_stats, time_runs
        from lts_cli.runtime import InMemorySession, decode_step_feeds

        settings = self.settings
        check_fits(arch, settings, kind)
        graph = settings.graph if kind == "prefill" else "causal-lm-with-past"
        with PeakRss() as peak, tempfile.TemporaryDirectory(prefix="lts-eval-") as tmp:
            if progress:
                progress(f"{kind}: build", 0, 1)
            start = time.perf_counter()
            model = gpt2_onnx.build(arch, graph=graph)
            file_bytes = model.file_size()
            built = time.perf_counter()
            if progress:
                progress(f"{kind}: session", 0, 1)
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
            times, stop = time_runs(run, settings, _labelled(progress, kind))
            timed = time.perf_counter()
        stats = latency_stats(times)
        return Measurement(
            archid=arch.archid,
            arch=arch.to_dict(),
            settings=settings.prefill_key() if kind == "prefill" else settings.decode_key(),
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
            kind=kind,
        )


def _labelled(progress: Progress | None, kind: str) -> Progress | None:
    if progress is None:
        return None
    return lambda stage, done, total: progress(f"{kind}: {stage}", done, total)


@dataclass
class Evaluation:
    """Every value asked for, and the measurements they came from (None where none was needed)."""

    values: dict[str, float]
    prefill: Measurement | None
    decode: Measurement | None

    @property
    def cached(self) -> bool:
        made = [m for m in (self.prefill, self.decode) if m is not None]
        return bool(made) and all(m.cached for m in made)

    @property
    def timing_s(self) -> float:
        return sum(m.timing_s for m in (self.prefill, self.decode) if m is not None and not m.cached)


def evaluate(
    evaluator: Evaluator, arch: Arch, objectives: Sequence[str], progress: Progress | None = None
) -> Evaluation:
    """The values of `objectives` (plus the parameter counts, the fp32 file size and whatever the
    measurements that were needed also gave), measuring only the kinds they need."""
    needed = kinds_needed(objectives)
    prefill = evaluator.evaluate(arch, "prefill", progress) if "prefill" in needed else None
    decode = evaluator.evaluate(arch, "decode", progress) if "decode" in needed else None
    return combine(arch, objectives, prefill, decode)


def kinds_needed(objectives: Sequence[str]) -> list[Kind]:
    """The kinds of measurement `objectives` need, in the order they are measured."""
    needed = registry.sources(objectives)
    return [kind for kind in ("prefill", "decode") if kind in needed]


def combine(
    arch: Arch, objectives: Sequence[str], prefill: Measurement | None, decode: Measurement | None
) -> Evaluation:
    """The values of `objectives` from the exact counts and the measurements made (here or elsewhere)."""
    values = exact_values(arch, objectives)
    if prefill is not None:
        values["onnx_latency"] = prefill.latency_s
        values["peak_rss"] = prefill.peak_rss_mib
    if decode is not None:
        values["decode_latency"] = decode.latency_s
    return Evaluation(values, prefill, decode)


def profile_objectives(
    arch: Arch, settings: MeasureSettings, requested: Sequence[str] | None
) -> tuple[list[str], str | None]:
    """What `lts profile` measures: the objectives asked for, or every one that fits the architecture
    (then a note says what was left out and why)."""
    if requested is not None:
        return list(requested), None
    chosen = list(registry.REGISTRY)
    if settings.decode_context >= arch.n_positions:
        chosen.remove("decode_latency")
        return chosen, (
            f"decode_latency left out: --decode-context {settings.decode_context} does not fit the model's "
            f"n_positions ({arch.n_positions}); add --decode-context {arch.n_positions - 1} to measure it"
        )
    return chosen, None


def profile(
    arch: Arch,
    settings: MeasureSettings,
    objectives: Sequence[str] = tuple(registry.REGISTRY),
    use_cache: bool = True,
    progress: Progress | None = None,
) -> Evaluation:
    """Measure one architecture on this machine (or return the cached results) and remember it."""
    from lts_cli.store import open_store

    with open_store() as store:
        result = evaluate(Evaluator(settings, store, use_cache=use_cache), arch, objectives, progress)
        store.put_arch(arch, source="profile")
    return result


class SearchEvaluator:
    """The search's evaluator: the chosen objectives' values, cached measurements; archs remembered by id."""

    def __init__(
        self,
        settings: MeasureSettings,
        objectives: Sequence[str],
        store: Store,
        source: str,
        use_cache: bool = True,
        progress: Progress | None = None,
    ) -> None:
        self.evaluator = Evaluator(settings, store, use_cache=use_cache)
        self.objectives = tuple(objectives)
        self.store = store
        self.source = source
        self.progress = progress

    def __call__(self, arch: Arch) -> Measured:
        result = evaluate(self.evaluator, arch, self.objectives, self.progress)
        self.store.put_arch(arch, self.source)
        return Measured(result.values, cached=result.cached, timing_s=result.timing_s)


def exact_values(arch: Arch, objectives: Sequence[str]) -> dict[str, float]:
    """The exact objectives of `arch` (parameter counts, ONNX file sizes), computed without measuring."""
    from lts_cli import gpt2_onnx

    values = {"non_embedding_params": float(arch.non_embedding_params), "onnx_memory": gpt2_onnx.file_size(arch) / MIB}
    if "total_params" in objectives:
        values["total_params"] = float(arch.unique_params)
    if "onnx_memory_int8" in objectives:
        values["onnx_memory_int8"] = gpt2_onnx.file_size(arch, dtype="int8") / MIB
    return values


LATENCY_KINDS: dict[str, Kind] = {name: cast(Kind, registry.get(name).source) for name in registry.PREDICTABLE}


class StoreScreener:
    """A screened search's predictions: exact objectives computed, latencies from models fitted on
    this machine's cached measurements with the search's settings (with the cache off: on the run's
    own measurements only), refitted before every generation."""

    def __init__(self, evaluator: Evaluator, objectives: Sequence[str]) -> None:
        self.evaluator = evaluator
        self.objectives = tuple(objectives)
        self.models: dict[str, Any] = {}

    def fit(self, records: Sequence[Any]) -> dict[str, dict[str, float]]:
        from lts_cli import predictor

        e = self.evaluator
        cached = e.store.measurements_on(e.fingerprint) if e.use_cache and e.store is not None else None
        out = {}
        for name, kind in LATENCY_KINDS.items():
            if name not in self.objectives:
                continue
            settings = e.settings.prefill_key() if kind == "prefill" else e.settings.decode_key()
            if cached is not None:
                rows = predictor.training_data(cached, kind, settings)
            else:
                rows = [(Arch(**r.arch), r.values[name]) for r in records if name in r.values]
            model = predictor.fit(rows, kind, settings)
            self.models[name] = model
            out[name] = {"n": model.n, "cv_median": model.cv_median, "cv_p90": model.cv_p90, "margin": model.margin}
        return out

    def predict(self, arch: Arch) -> dict[str, float]:
        values = exact_values(arch, self.objectives)
        for name, model in self.models.items():
            values[name] = model.predict(arch)
        return {name: values[name] for name in self.objectives}


def predictions(arch: Arch, settings: MeasureSettings, objectives: Sequence[str]) -> dict[str, Any]:
    """`lts profile --predict`: the latency models of this machine and settings, applied to `arch`,
    with their expected error; a kind with too few measurements says how many more it needs."""
    from lts_cli import predictor
    from lts_cli.errors import TooFewMeasurements
    from lts_cli.store import open_store

    with open_store() as store:
        evaluator = Evaluator(settings, store)
        cached = store.measurements_on(evaluator.fingerprint)
    out: dict[str, Any] = {"exact": exact_values(arch, objectives), "predicted": {}, "missing": {}}
    for name in objectives:
        if registry.get(name).kind == "measured" and name not in LATENCY_KINDS:
            out["missing"][name] = "not predicted (the model covers latencies); `lts profile` measures it"
    for name, kind in LATENCY_KINDS.items():
        if name not in objectives:
            continue
        key = settings.prefill_key() if kind == "prefill" else settings.decode_key()
        try:
            model = predictor.fit(predictor.training_data(cached, kind, key), kind, key)
        except TooFewMeasurements as exc:
            out["missing"][name] = str(exc)
            continue
        out["predicted"][name] = {"value": model.predict(arch), "source": "predicted", **model.to_dict()}
    return out


def predictor_report(settings: MeasureSettings, kind: Kind) -> dict[str, Any]:
    """`lts predictor show`: the latency model of this machine for `kind` and these settings, fitted
    on every cached measurement that matches, and its accuracy out of sample (each measurement
    predicted by a model fitted without it)."""
    import numpy as np

    from lts_cli import predictor
    from lts_cli.rankstats import spearman
    from lts_cli.store import open_store

    with open_store() as store:
        evaluator = Evaluator(settings, store)
        cached = store.measurements_on(evaluator.fingerprint)
    key = settings.prefill_key() if kind == "prefill" else settings.decode_key()
    rows = predictor.training_data(cached, kind, key)
    model = predictor.fit(rows, kind, key)
    x = np.stack([predictor.features(a, kind, model.settings) for a, _ in rows])
    measured = [t for _, t in rows]
    predicted = [float(v) for v in predictor.cross_validate(x, np.array(measured))]
    errors = sorted(abs(p - m) / m for p, m in zip(predicted, measured, strict=True))
    return {
        "fingerprint": evaluator.fingerprint,
        "model": model.to_dict(),
        "out_of_sample": {
            "n": len(rows),
            "spearman": spearman(predicted, measured),
            "median_abs_error": float(np.median(errors)),
            "p90_abs_error": float(np.percentile(errors, 90)),
        },
        "points": [
            {"archid": a.archid, "measured": m, "predicted": p} for (a, m), p in zip(rows, predicted, strict=True)
        ],
    }
