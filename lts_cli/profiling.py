"""Profile an `lts export` folder on this machine: prefill latency, per-token decode latency with the
KV cache, file size and peak resident memory (not cached: an export's weights can change)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from lts_cli.config import MeasureSettings
from lts_cli.errors import LtsError
from lts_cli.measuring import Progress

MIB = 2**20


def profile_export(folder: Path, settings: MeasureSettings, progress: Progress | None = None) -> dict[str, Any]:
    """Prefill latency for `seq_len` tokens, then the latency of one decode step with a KV cache of
    `seq_len` tokens (the decode_latency objective's protocol), file size and peak RSS."""
    import numpy as np

    from lts_cli.machine import fingerprint
    from lts_cli.measuring import PeakRss, latency_stats, time_runs
    from lts_cli.runtime import EXPORT_FILE, decode_step_feeds, empty_past, feeds, read_info, session, session_options

    info = read_info(folder)
    if info is None:
        raise LtsError(f"{folder} is not an `lts export` folder (no export.json)")
    config = json.loads((folder / "config.json").read_text())
    if info["past"] and settings.seq_len >= config.get("n_positions", 1024):
        raise LtsError(
            f"--seq-len {settings.seq_len} leaves no room to decode within n_positions {config['n_positions']}; "
            f"use --seq-len {config['n_positions'] - 1} or less"
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
            decode = {**latency_stats(decode_times), "stop": decode_stop, "context": settings.seq_len}
    return {
        "folder": str(folder),
        "export": {k: info[k] for k in ("source", "graph", "dtype", "untrained", "optimized")},
        "settings": settings.prefill_key(),
        "fingerprint": fingerprint(),
        "file_mib": (folder / EXPORT_FILE).stat().st_size / MIB,
        "session_s": opened,
        "prefill": {**latency_stats(prefill_times), "stop": prefill_stop, "tokens": settings.seq_len},
        "decode_per_token": decode,
        "peak_rss_mib": peak.delta_mib,
        "peak_rss_method": peak.method,
    }
