"""`lts profile`: every objective of one architecture on this machine (or a Ray node), through the
measurement service; or an `lts export` folder's prefill and per-token decode latency, file size and
peak resident memory (an export is not cached: its weights can change)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lts_cli import objectives as registry
from lts_cli.errors import ConfigError, LtsError
from lts_cli.gallery import GalleryEntry, Resolved
from lts_cli.measurer import Measurer, Where
from lts_cli.measuring import MIB, LatencyStats, Progress
from lts_cli.settings import Measurement, MeasureSettings
from lts_cli.space import Arch

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

    def to_dict(self) -> dict[str, Any]:
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
    settings: dict[str, Any]
    fingerprint: dict[str, Any]
    file_mib: float
    session_s: float
    prefill: Timing
    decode: Timing | None  # per token; None for an export without the KV cache
    peak_rss_mib: float
    peak_rss_method: str

    def to_dict(self) -> dict[str, Any]:
        def timing(t: Timing, key: str) -> dict[str, Any]:
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
