"""A per-machine latency model: ONNX Runtime latency of an architecture, predicted from what was
measured on this machine with the same settings, with its expected error.

Latency on a CPU is mostly matrix products and memory traffic, so the model is linear in counts
that an architecture and the settings fix (FLOPs of the projections, the MLP, attention at the
sequence length, the LM head; elementwise work; bytes of weights and of the KV cache; per-layer,
per-head and per-run fixed costs), with non-negative coefficients (a cost cannot be negative),
fitted by least squares on the *relative* error (numpy, Lawson-Hanson NNLS). Its expected error is
measured out of sample: k-fold predictions of measurements it was not fitted on.

A prediction is never a measurement: nothing here writes to the measurement cache.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lts_cli import objectives as registry
from lts_cli.errors import TooFewMeasurements
from lts_cli.machine import Fingerprint
from lts_cli.measurer import Measurer, exact_values
from lts_cli.rankstats import Errors, errors, spearman
from lts_cli.settings import Kind, Measurement, MeasureSettings, SettingsKey
from lts_cli.space import Arch
from lts_cli.views import Block, JsonObject, Lines, Note, Table

MIN_MEASUREMENTS = 8  # fewer cannot pin down the main costs
FOLDS = 5
MIN_MARGIN = 0.03  # timing noise on a quiet machine: the screen never trusts a prediction more than this

# Settings that change a measurement's precision but not what it measures: pooled for training.
TIMING_ONLY = ("warmup", "trials", "adaptive", "min_trials", "target_ci")

# Each feature is a distinct monomial of the architecture for fixed settings (S, context, batch),
# so the coefficients are identifiable: d^2 L, d di L, d L, di L, H L, d, L, 1.
PREFILL_FEATURES = (
    "projection FLOPs (QKV, out)", "MLP FLOPs", "attention FLOPs and d-wide elementwise (S^2 d L)",
    "MLP-wide elementwise (S di L)", "softmax elements (heads x S^2)", "LM head FLOPs", "per layer", "per run",
)  # fmt: skip
DECODE_FEATURES = (
    "projection FLOPs (weights read)", "MLP FLOPs (weights read)", "attention over the KV cache (context d L)",
    "MLP-wide elementwise (di L)", "softmax elements (heads x context)", "LM head FLOPs (embedding read)",
    "per layer", "per step",
)  # fmt: skip


def model_key(settings: SettingsKey) -> SettingsKey:
    """The settings a latency depends on (measurements that differ only in timing protocol pool)."""
    return {k: v for k, v in settings.items() if k not in TIMING_ONLY}


def features(arch: Arch, kind: str, settings: SettingsKey) -> np.ndarray:
    """The counts the latency of `arch` is linear in, for a prefill or a decode measurement."""
    L, d, di, H, V = arch.n_layer, arch.d_model, arch.d_inner, arch.n_head, arch.vocab_size
    B = settings.get("batch_size", 1)
    if kind == "prefill":
        S = settings["seq_len"]
        head_rows = S if settings.get("graph") == "logits" else 1
        return np.array(
            [
                8.0 * B * S * d * d * L,
                4.0 * B * S * d * di * L,
                4.0 * B * S * S * d * L,
                1.0 * B * S * di * L,
                1.0 * B * H * S * S * L,
                2.0 * B * head_rows * d * V,
                float(L),
                1.0,
            ]
        )
    C = settings["decode_context"] + 1
    return np.array(
        [
            8.0 * B * d * d * L,
            4.0 * B * d * di * L,
            4.0 * B * C * d * L,
            1.0 * B * di * L,
            1.0 * B * H * C * L,
            2.0 * B * d * V,
            float(L),
            1.0,
        ]
    )


def nnls(a: np.ndarray, b: np.ndarray, max_iter: int = 500) -> np.ndarray:
    """min ||a x - b|| subject to x >= 0 (Lawson and Hanson's active-set method)."""
    m, n = a.shape
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    tol = 10 * np.finfo(float).eps * np.abs(a).sum(axis=0).max() * max(m, n)
    w = a.T @ (b - a @ x)
    for _ in range(max_iter):
        if passive.all() or w[~passive].max() <= tol:
            break
        passive[np.argmax(np.where(passive, -np.inf, w))] = True
        while True:
            s = np.zeros(n)
            s[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if s[passive].min() > 0:
                break
            blocking = passive & (s <= 0)
            alpha = np.min(x[blocking] / (x[blocking] - s[blocking]))
            x = x + alpha * (s - x)
            passive &= x > tol
            x[~passive] = 0.0
        x = s
        w = a.T @ (b - a @ x)
    return x


def _fit_coef(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative coefficients minimizing the squared relative error of x @ coef against y."""
    scale = np.abs(x).max(axis=0)
    scale[scale == 0] = 1.0
    rows = (x / scale) / y[:, None]  # each row divided by its latency: relative error
    return nnls(rows, np.ones_like(y)) / scale


@dataclass
class LatencyModel:
    """A fitted model for one kind of measurement, machine and settings."""

    kind: str
    settings: SettingsKey
    coef: list[float]
    n: int  # measurements it was fitted on
    expected: Errors  # out-of-fold absolute relative error
    feature_names: tuple[str, ...] = field(default=())

    def predict(self, arch: Arch) -> float:
        return float(features(arch, self.kind, self.settings) @ np.asarray(self.coef))

    @property
    def margin(self) -> float:
        """The relative error a prediction is trusted to: the 90th percentile seen out of sample."""
        return max(self.expected.p90, MIN_MARGIN)

    def summary(self) -> dict[str, float]:
        """What a screened search logs of the model it screened with."""
        return {"n": self.n, "cv_median": self.expected.median, "cv_p90": self.expected.p90, "margin": self.margin}

    def to_dict(self) -> JsonObject:
        return {
            "kind": self.kind,
            "settings": self.settings,
            "n": self.n,
            "expected_error": {**asdict(self.expected), "how": f"{FOLDS}-fold, out of sample"},
            "coefficients": dict(zip(self.feature_names, self.coef, strict=True)),
        }


def fit(rows: Sequence[tuple[Arch, float]], kind: str, settings: SettingsKey, seed: int = 0) -> LatencyModel:
    """Fit on (architecture, measured latency) pairs; the expected error from k-fold predictions."""
    if len(rows) < MIN_MEASUREMENTS:
        raise TooFewMeasurements(
            f"the latency model needs {MIN_MEASUREMENTS} measurements on this machine with these settings and "
            f"has {len(rows)}: measure {MIN_MEASUREMENTS - len(rows)} more (`lts search`, or `lts profile ID`)"
        )
    key = model_key(settings)
    x = np.stack([features(a, kind, key) for a, _ in rows])
    y = np.array([t for _, t in rows], dtype=float)
    predicted = cross_validate(x, y, seed)
    names = PREFILL_FEATURES if kind == "prefill" else DECODE_FEATURES
    expected = errors(list(predicted), list(y))
    return LatencyModel(kind, key, [float(c) for c in _fit_coef(x, y)], len(rows), expected, names)


def cross_validate(x: np.ndarray, y: np.ndarray, seed: int = 0) -> np.ndarray:
    """Out-of-fold predictions: each measurement predicted by a model fitted without it."""
    order = list(range(len(y)))
    random.Random(seed).shuffle(order)
    folds = [order[i::FOLDS] for i in range(min(FOLDS, len(y)))]
    out = np.zeros_like(y)
    for test in folds:
        train = np.setdiff1d(np.arange(len(y)), test)
        out[test] = x[test] @ _fit_coef(x[train], y[train])
    return out


def training_data(measurements: Sequence[Measurement], kind: str, settings: SettingsKey) -> list[tuple[Arch, float]]:
    """(architecture, latency) of the cached `measurements` of `kind` taken with the same settings
    (timing protocol aside); an architecture measured more than once counts once, at its median."""
    want = model_key(settings)
    found: dict[str, list[float]] = {}
    archs: dict[str, Arch] = {}
    for m in measurements:
        if m.kind != kind or model_key(m.settings) != want:
            continue
        arch = Arch(**m.arch)
        archs[arch.archid] = arch
        found.setdefault(arch.archid, []).append(m.latency_s)
    return [(archs[k], float(np.median(v))) for k, v in found.items()]


# ---- accuracy -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accuracy:
    """Predictions against measurements the model was not fitted on."""

    n: int
    spearman: float
    errors: Errors
    points: list[tuple[str, float, float]]  # (archid, measured, predicted)


def held_out(
    rows: Sequence[tuple[Arch, float]], kind: str, settings: SettingsKey, train: int, seed: int = 0
) -> Accuracy:
    """Fit on `train` random measurements, test on all the others."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    fitted = fit([rows[i] for i in order[:train]], kind, settings, seed)
    test = [rows[i] for i in order[train:]]
    return _accuracy(test, [fitted.predict(a) for a, _ in test])


def _accuracy(rows: Sequence[tuple[Arch, float]], predicted: Sequence[float]) -> Accuracy:
    measured = [t for _, t in rows]
    points = [(a.archid, m, p) for (a, m), p in zip(rows, predicted, strict=True)]
    return Accuracy(len(rows), spearman(list(predicted), measured), errors(predicted, measured), points)


# ---- this machine's models, from the measurement cache -------------------------------------------


class Screener:
    """A screened search's predictions (screening.Screener): exact objectives computed, latencies from
    models fitted on this machine's cached measurements with the search's settings (with the cache
    off: on the run's own measurements only), refitted before every generation."""

    def __init__(self, measurer: Measurer) -> None:
        self.measurer = measurer
        self.models: dict[str, LatencyModel] = {}
        self.exact: dict[str, dict[str, float]] = {}

    def fit(self, records: Sequence[Any]) -> dict[str, dict[str, float]]:
        m = self.measurer
        cached = m.cached_rows()
        out = {}
        for name in (n for n in m.objectives if registry.get(n).predictable):
            kind = registry.get(name).source
            if cached is not None:
                rows = training_data(cached, kind, m.settings.key(kind))  # type: ignore[arg-type]
            else:
                rows = [(Arch(**r.arch), r.values[name]) for r in records if name in r.values]
            self.models[name] = fit(rows, kind, m.settings.key(kind))  # type: ignore[arg-type]
            out[name] = self.models[name].summary()
        return out

    def predict(self, arch: Arch) -> dict[str, float]:
        return self.predict_many([arch])[0]

    def predict_many(self, archs: Sequence[Arch]) -> list[dict[str, float]]:
        if not archs:
            return []
        out = [dict(self._exact(a)) for a in archs]
        for name, model in self.models.items():
            x = np.stack([features(a, model.kind, model.settings) for a in archs])
            for values, latency in zip(out, x @ np.asarray(model.coef), strict=True):
                values[name] = float(latency)
        return [{name: values[name] for name in self.measurer.objectives} for values in out]

    def _exact(self, arch: Arch) -> dict[str, float]:
        """Exact values, computed once per architecture (a file size builds the graph: ~1 ms)."""
        if arch.archid not in self.exact:
            self.exact[arch.archid] = exact_values(arch, self.measurer.settings, self.measurer.objectives)
        return self.exact[arch.archid]


@dataclass(frozen=True)
class Prediction:
    """`lts profile --predict`: exact values computed, latencies predicted (with the model that
    predicted each), and why the others could not be."""

    exact: dict[str, float]
    predicted: dict[str, tuple[float, LatencyModel]]
    missing: dict[str, str]


def predict(arch: Arch, settings: MeasureSettings, objectives: Sequence[str]) -> Prediction:
    """The latency models of this machine and settings, applied to `arch`; a kind with too few
    measurements says how many more it needs. Nothing is measured or stored."""
    cached = _cached_here()
    predicted, missing = {}, {}
    for name in objectives:
        o = registry.get(name)
        if o.kind == "measured" and not o.predictable:
            missing[name] = "not predicted (the model covers latencies); `lts profile` measures it"
        elif o.predictable:
            key = settings.key(o.source)  # type: ignore[arg-type]
            try:
                model = fit(training_data(cached, o.source, key), o.source, key)
            except TooFewMeasurements as exc:
                missing[name] = str(exc)
                continue
            predicted[name] = (model.predict(arch), model)
    return Prediction(exact_values(arch, settings, objectives), predicted, missing)


@dataclass(frozen=True)
class Report:
    """`lts predictor show`: this machine's model for one kind of measurement, and its accuracy."""

    fingerprint: Fingerprint
    settings: MeasureSettings
    model: LatencyModel
    out_of_sample: Accuracy
    plot: Path

    def to_dict(self) -> JsonObject:
        acc = self.out_of_sample
        errors = {"median_abs_error": acc.errors.median, "p90_abs_error": acc.errors.p90}
        points = [{"archid": a, "measured": m, "predicted": p} for a, m, p in acc.points]
        return {"fingerprint": self.fingerprint, "model": self.model.to_dict(), "plot": str(self.plot),
                "out_of_sample": {"n": acc.n, "spearman": acc.spearman, **errors}, "points": points}  # fmt: skip

    def view(self) -> list[Block]:
        acc, model, s = self.out_of_sample, self.model, self.settings
        what = f"seq {s.seq_len}" if model.kind == "prefill" else f"context {s.decode_context}"
        error = f"absolute error median {acc.errors.median:.1%}, 90th percentile {acc.errors.p90:.1%}"
        lines = [f"out of sample ({acc.n} measurements, each predicted by a model fitted without it): Spearman "
                 f"{acc.spearman:.4f}, {error}"]  # fmt: skip
        heading = (f"{model.kind} latency model for {what}, batch {s.batch_size}, {s.threads} thread(s); "
                   f"fitted on {model.n} measurements of this machine")  # fmt: skip
        rows = [[name, f"{coef:.3g}" if coef else "0 (not used)"]
                for name, coef in zip(model.feature_names, model.coef, strict=True)]  # fmt: skip
        return [Lines(lines, heading), Table(["feature", "seconds per unit"], rows), Note(f"plot: {self.plot}")]


def report(settings: MeasureSettings, kind: Kind, plot: Path | None = None) -> Report:
    """The latency model of this machine for `kind` and these settings, fitted on every cached
    measurement that matches, its accuracy out of sample (each measurement predicted by a model fitted
    without it), and a plot of predicted against measured (`plot`, default in the workspace)."""
    from lts_cli import workspace
    from lts_cli.machine import fingerprint
    from lts_cli.plots import predictor_plot

    key = settings.key(kind)
    rows = training_data(_cached_here(), kind, key)
    model = fit(rows, kind, key)
    x = np.stack([features(a, kind, model.settings) for a, _ in rows])
    accuracy = _accuracy(rows, [float(v) for v in cross_validate(x, np.array([t for _, t in rows]))])
    what = f"seq {settings.seq_len}" if kind == "prefill" else f"context {settings.decode_context}"
    title = f"{kind} latency, {what}: Spearman {accuracy.spearman:.3f}, median error {accuracy.errors.median:.1%}"
    target = plot or workspace.ensure_home() / workspace.PREDICTOR / f"{kind}.png"
    workspace.atomic_write_bytes(target, predictor_plot(accuracy.points, title))
    return Report(fingerprint(), settings, model, accuracy, target)


def _cached_here() -> list[Measurement]:
    from lts_cli.machine import fingerprint
    from lts_cli.store import open_store

    with open_store() as store:
        return store.measurements_on(fingerprint())
