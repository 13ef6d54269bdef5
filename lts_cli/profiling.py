"""`lts profile`: every objective of one architecture on this machine (or a Ray node), through the
measurement service; or an `lts export` folder's prefill and per-token decode latency, file size and
peak resident memory (an export is not cached: its weights can change)."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lts_cli import objectives as registry
from lts_cli.errors import ConfigError, LtsError
from lts_cli.gallery import GalleryEntry, Resolved
from lts_cli.machine import Fingerprint
from lts_cli.measurer import Measurer, Where
from lts_cli.measuring import MIB, LatencyStats, Progress
from lts_cli.settings import Measurement, MeasureSettings, SettingsKey
from lts_cli.space import Arch
from lts_cli.views import Block, JsonObject, Note, Pairs, fmt_s

if TYPE_CHECKING:
    from lts_cli.predictor import Prediction

OnNote = Callable[[str], None]


@dataclass(frozen=True)
class ArchProfile:
    """One architecture's objectives: computed, measured now, or from the cache."""

    label: str
    arch: Arch
    entry: GalleryEntry | None  # published figures, for a gallery architecture
    settings: MeasureSettings
    objectives: tuple[str, ...]
    values: dict[str, float]
    prefill: Measurement | None
    decode: Measurement | None
    host: str  # where it was measured ("cache", "here", or a Ray node)

    def view(self) -> list[Block]:
        figures = self.entry.published() if self.entry else None
        blocks: list[Block] = [
            Note(f"{m.kind}: cached from {m.measured_at} (same arch, settings and machine); --no-cache measures again",
                 always=True) for m in (self.prefill, self.decode) if m is not None and m.cached
        ]  # fmt: skip
        if self.host not in ("cache", "here"):
            blocks.append(Note(f"measured on {self.host}", always=True))
        published_seq = int(figures["latency_seq_len"]) if figures else None
        if published_seq and self.prefill is not None and self.settings.seq_len != published_seq:
            like = f"lts profile {shlex.quote(self.label)} --seq-len {published_seq}"
            text = f"the published latency was measured at seq {published_seq}; `{like}` compares like with like"
            blocks.append(Note(text, always=True))
        rows = []
        for name in self.objectives:
            o, value = registry.get(name), self.values[name]
            shown = o.format(value) + (f" ({int(value):,})" if o.unit == "params" else "")
            published = o.published_value(figures)
            rows.append((o.label, shown + (f"   published {o.format(published)}" if published is not None else "")))
        for m in (x for x in (self.prefill, self.decode) if x is not None):
            ci = f"±{m.latency_ci95_rel:.1%}" if m.latency_ci95_rel is not None else "-"
            rows.append((f"  {m.kind}: mean / CV / 95% CI", f"{fmt_s(m.latency_mean_s)} s / {m.latency_cv:.1%} / {ci}"))
            rows.append((f"  {m.kind}: timed runs; build / session / timing s",
                         f"{m.runs} ({m.stop}); {m.build_s:.2f} / {m.session_s:.2f} / {m.timing_s:.2f}"))  # fmt: skip
        a = self.arch
        title = f"{self.label}  n_layer {a.n_layer}, d_model {a.d_model}, d_inner {a.d_inner}, n_head {a.n_head}"
        blocks.append(Pairs(rows, title + (f"\narchid {a.archid}" if self.label != a.archid else "")))
        measured = self.prefill or self.decode
        if measured is not None:
            fp = measured.fingerprint
            blocks.append(Note(f"{self.settings.describe()}; {fp['cpu']}, {fp['cores']} cores, onnxruntime "
                               f"{fp['onnxruntime']}; load {measured.load_avg:.2f}"))  # fmt: skip
        return blocks

    def to_dict(self) -> JsonObject:
        return {
            "label": self.label,
            "archid": self.arch.archid,
            "arch": self.arch.to_dict(),
            "objectives": {name: self.values[name] for name in self.objectives},
            "kinds": {name: registry.get(name).kind for name in self.objectives},
            "cached": self.host == "cache",
            "prefill": self.prefill.to_dict() if self.prefill else None,
            "decode": self.decode.to_dict() if self.decode else None,
            "latency_statistic": "median of timed runs",
            "published": self.entry.published() if self.entry else None,
        }


def profile(
    target: Resolved,
    settings: MeasureSettings,
    objectives: Sequence[str] | None = None,
    where: Where | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
    on_note: OnNote | None = None,
) -> ArchProfile:
    """Measure one architecture (or return the cached results) and remember it. `objectives`: those
    asked for; None: every objective that fits the architecture (a note names the others)."""
    from lts_cli.store import open_store

    chosen, left_out = registry.fitting(target.arch, settings, objectives)
    if objectives is not None:
        chosen = list(objectives)  # asked for by name: measuring says what does not fit
    for message in (*target.notes, *left_out):
        if on_note:
            on_note(message)
    with open_store() as store:
        measurer = Measurer(settings, chosen, store, where, use_cache, "profile", progress, on_note)
        result = measurer.evaluate(target.arch)
    return ArchProfile(
        target.label, target.arch, target.entry, settings, tuple(chosen), result.values, result.prefill,
        result.decode, result.host,
    )  # fmt: skip


@dataclass(frozen=True)
class PredictedProfile:
    """`lts profile --predict`: exact objectives computed, latencies predicted (never stored)."""

    label: str
    arch: Arch
    objectives: tuple[str, ...]
    prediction: Prediction

    def to_dict(self) -> JsonObject:
        p = self.prediction
        predicted = {k: {"value": v, "source": "predicted", **m.to_dict()} for k, (v, m) in p.predicted.items()}
        return {"label": self.label, "archid": self.arch.archid, "exact": p.exact, "predicted": predicted,
                "missing": p.missing}  # fmt: skip

    def view(self) -> list[Block]:
        p = self.prediction
        blocks: list[Block] = [Note(f"{name}: {why}", always=True) for name, why in p.missing.items()]
        rows = [(registry.get(n).label, f"{registry.get(n).format(p.exact[n])} (exact)")
                for n in self.objectives if n in p.exact]  # fmt: skip
        for name, (value, model) in p.predicted.items():
            e = model.expected
            how = f"predicted; expected error {e.median:.1%} median, {e.p90:.1%} p90 out of sample; fitted on {model.n}"
            rows.append((registry.get(name).label, f"{registry.get(name).format(value)} ({how})"))
        return [*blocks, Pairs(rows, f"{self.label}  {self.arch.short()}")]


def predicted(target: Resolved, settings: MeasureSettings, objectives: Sequence[str] | None) -> PredictedProfile:
    """The objectives of `target` with this machine's latency model instead of measuring; too few
    measurements for every latency asked for is an error saying how many more it needs."""
    from lts_cli.errors import TooFewMeasurements
    from lts_cli.predictor import predict

    names, _ = registry.fitting(target.arch, settings, objectives)
    p = predict(target.arch, settings, names)
    latencies = [name for name in names if registry.get(name).predictable]
    if latencies and not p.predicted:
        raise TooFewMeasurements(p.missing[latencies[0]])
    return PredictedProfile(target.label, target.arch, tuple(names), p)


def target(ref: str | None, arch_spec: str | None, revision: str | None = None) -> Resolved:
    """What `lts profile` was asked to profile: a reference (references.architecture) or an inline
    `n_layer=..,d_model=..,d_inner=..,n_head=..`, exactly one of them."""
    from lts_cli.errors import UsageError
    from lts_cli.gallery import entry_for
    from lts_cli.references import architecture
    from lts_cli.space import parse_arch_spec

    if (ref is None) == (arch_spec is None):
        raise UsageError(
            "give an architecture: an ID or FILE, or --arch n_layer=..,d_model=..,d_inner=..,n_head=.. (not both)"
        )
    if arch_spec is not None:
        arch = parse_arch_spec(arch_spec)
        return Resolved(arch, arch.archid, entry_for(arch))
    assert ref is not None
    return architecture(ref, revision=revision)


# ---- an export folder ------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    stats: LatencyStats
    stop: str  # fixed | converged | max-trials
    tokens: int  # prefill: tokens run; decode: tokens in the KV cache


@dataclass(frozen=True)
class ExportProfile:
    folder: Path
    source: str
    graph: str
    dtype: str
    untrained: bool
    settings: SettingsKey
    fingerprint: Fingerprint
    file_mib: float
    session_s: float
    prefill: Timing
    decode: Timing | None  # per token; None for an export without the KV cache
    peak_rss_mib: float
    peak_rss_method: str

    def view(self) -> list[Block]:
        p, d = self.prefill, self.decode
        rows = [(f"prefill latency, s (median, {p.tokens} tokens)",
                 f"{fmt_s(p.stats.median)} (CV {p.stats.cv:.1%}, {p.stats.n} runs)")]  # fmt: skip
        if d:
            rows.append((f"decode latency per token, ms (median, context {d.tokens})",
                         f"{1000 * d.stats.median:.2f} (CV {d.stats.cv:.1%}, {d.stats.n} runs)"))  # fmt: skip
        rows += [("file size, MiB", f"{self.file_mib:.2f}"),
                 ("peak RSS while running, MiB", f"{self.peak_rss_mib:.0f}")]  # fmt: skip
        random = " (random weights)" if self.untrained else ""
        return [Pairs(rows, f"{self.folder}  {self.graph}, {self.dtype}{random}")]

    def to_dict(self) -> JsonObject:
        def timing(t: Timing, key: str) -> JsonObject:
            return {**asdict(t.stats), "stop": t.stop, key: t.tokens}

        return {
            "folder": str(self.folder),
            "export": {"source": self.source, "graph": self.graph, "dtype": self.dtype, "untrained": self.untrained},
            "settings": self.settings,
            "fingerprint": self.fingerprint,
            "file_mib": self.file_mib,
            "session_s": self.session_s,
            "prefill": timing(self.prefill, "tokens"),
            "decode_per_token": timing(self.decode, "context") if self.decode else None,
            "peak_rss_mib": self.peak_rss_mib,
            "peak_rss_method": self.peak_rss_method,
        }


def profile_export(folder: Path, settings: MeasureSettings, progress: Progress | None = None) -> ExportProfile:
    """Prefill latency for `seq_len` tokens, then the latency of one decode step with a KV cache of
    `seq_len` tokens (the decode_latency objective's protocol), file size and peak RSS."""
    from lts_cli import workspace

    with workspace.in_use(folder):
        return _profile_export(folder, settings, progress)


def _profile_export(folder: Path, settings: MeasureSettings, progress: Progress | None) -> ExportProfile:
    import numpy as np

    from lts_cli.machine import fingerprint
    from lts_cli.measuring import PeakRss, latency_stats, time_runs
    from lts_cli.runtime import EXPORT_FILE, decode_step_feeds, empty_past, feeds, read_info, session, session_options

    info = read_info(folder)
    if info is None:
        raise LtsError(f"{folder} is not an `lts export` folder (no export.json)")
    config = json.loads((folder / "config.json").read_text())
    if info["past"] and settings.seq_len >= config.get("n_positions", 1024):
        raise ConfigError(
            ["seq_len"],
            f"{{0}} {settings.seq_len} leaves no room to decode within n_positions {config['n_positions']}; "
            f"use {{0}} {config['n_positions'] - 1} or less",
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
            step = decode_step_feeds(sess, settings.batch_size, settings.seq_len)
            decode_times, decode_stop = time_runs(lambda: sess.run(None, step), settings, progress)
            decode = Timing(latency_stats(decode_times), decode_stop, settings.seq_len)
    return ExportProfile(
        folder=folder,
        source=info.get("source", ""),
        graph=info.get("graph", ""),
        dtype=info.get("dtype", ""),
        untrained=bool(info.get("untrained")),
        settings=settings.key("prefill"),
        fingerprint=fingerprint(),
        file_mib=(folder / EXPORT_FILE).stat().st_size / MIB,
        session_s=opened,
        prefill=Timing(latency_stats(prefill_times), prefill_stop, settings.seq_len),
        decode=decode,
        peak_rss_mib=peak.delta_mib,
        peak_rss_method=peak.method,
    )
