"""Shared by the benchmarks: run `lts` in a fresh process and watch its memory."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil


def run_lts(home: str, *args: str, source: Path | None = None) -> tuple[str, float, float, list[float]]:
    """`python -m lts_cli ARGS` with LTS_HOME=home: (stdout, wall s, peak RSS MiB, RSS samples MiB).
    `source`: a folder holding another version's `lts_cli` package, run instead of this checkout.

    The peak is the larger of the kernel's high-water mark at exit and the RSS sampled every 0.2 s:
    lts resets the high-water mark before each measurement (to report per-architecture peaks), so
    for a process that measures many architectures the kernel's figure covers only the last one.
    """
    env = {**os.environ, "LTS_HOME": home}
    if source is not None:
        env["PYTHONPATH"] = str(source)
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "lts_cli", *args], stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=source
        )
        samples: list[float] = []
        done = threading.Event()

        def sample() -> None:
            process = psutil.Process(proc.pid)
            while not done.is_set():
                try:
                    samples.append(process.memory_info().rss / 2**20)
                except psutil.Error:
                    return
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        done.set()
        sampler.join()
        wall = time.perf_counter() - start
        if status != 0:
            raise SystemExit(f"lts {' '.join(args)} failed with status {status}")
        out.seek(0)
        return out.read().decode(), wall, max([usage.ru_maxrss / 1024, *samples]), samples
