"""`make bench-train`: what training costs here, side by side with another checkout (`--baseline DIR`,
a folder holding an earlier `lts_cli`), each in a fresh workspace with one warm token cache.

1. `lts train` of a 1-layer d_model-64 architecture for 5 steps at seq 32, batch 2: with the defaults,
   and with evaluation cut to 2 batches (128 tokens); alternating, `--repeats` times; medians.
2. `lts proxy --sample 4 --max-steps 5 --max-params 2e6`: wall time, and the share of it spent in
   optimizer steps (each architecture's tokens_seen / tokens_per_second, which both versions report).
3. (this checkout only) `lts train gpt2_a9e3` with the published budget for `--a9e3-seconds`: peak
   resident memory, how it split the batch, when it said what the budget costs; then Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from common import run_lts

HERE = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
TINY = {"n_layer": 1, "d_model": 64, "d_inner": 256, "n_head": 2, "n_positions": 128}


def cut_config(source: Path) -> str:
    """Evaluation cut to 2 batches of 2 x 32 tokens, in the config keys that version knows."""
    if "eval_tokens" in (source / "lts_cli" / "training.py").read_text():
        return "eval_tokens: 128\nfinal_eval: sample\n"
    return "eval_batches: 2\n"


def workspace(tokens: str) -> tempfile.TemporaryDirectory[str]:
    home = tempfile.TemporaryDirectory()
    (Path(home.name) / "tokens").symlink_to(tokens, target_is_directory=True)
    return home


def short_training(versions: dict[str, Path], tokens: str, repeats: int) -> dict[str, Any]:
    print(f"1. lts train {TINY} --max-steps 5 --seq-len 32 --batch-size 2, defaults vs evaluation cut to 2 batches")
    walls: dict[str, list[float]] = {f"{v} {mode}": [] for v in versions for mode in ("defaults", "cut")}
    for _ in range(repeats):
        for version, source in versions.items():
            for mode in ("defaults", "cut"):
                with workspace(tokens) as home:
                    arch = Path(home) / "tiny.json"
                    arch.write_text(json.dumps(TINY))
                    config = Path(home) / "cut.yaml"
                    config.write_text(cut_config(source))
                    extra = ["--config", str(config)] if mode == "cut" else []
                    _, wall, _, _ = run_lts(home, "train", str(arch), "--max-steps", "5", "--seq-len", "32",
                                            "--batch-size", "2", *extra, "--json", source=source)  # fmt: skip
                walls[f"{version} {mode}"].append(wall)
                print(f"   {version:<9} {mode:<9} {wall:6.1f} s", flush=True)
    out = {k: {"walls_s": v, "median_s": statistics.median(v)} for k, v in walls.items()}
    for version in versions:
        ratio = out[f"{version} defaults"]["median_s"] / out[f"{version} cut"]["median_s"]
        out[f"{version} ratio"] = ratio
        print(f"   {version}: defaults {out[f'{version} defaults']['median_s']:.1f} s, cut "
              f"{out[f'{version} cut']['median_s']:.1f} s: {ratio:.2f}x (medians)")  # fmt: skip
    return out


def proxy(versions: dict[str, Path], tokens: str) -> dict[str, Any]:
    print("\n2. lts proxy --sample 4 --max-steps 5 --max-params 2e6")
    out = {}
    for version, source in versions.items():
        with workspace(tokens) as home:
            stdout, wall, peak, _ = run_lts(home, "proxy", "--sample", "4", "--max-steps", "5", "--max-params", "2e6",
                                            "--json", source=source)  # fmt: skip
        report = json.loads(stdout)
        steps = sum(r["tokens_seen"] / r["tokens_per_second"] for r in _trained(report) if r["tokens_per_second"])
        out[version] = {"wall_s": wall, "steps_s": steps, "share": steps / wall, "peak_rss_mib": peak,
                        "seconds": report.get("seconds"), "verdict": report["verdict"]}  # fmt: skip
        print(
            f"   {version:<9} {wall:6.1f} s, {steps:5.1f} s of it in optimizer steps ({steps / wall:.0%})", flush=True
        )
    return out


def _trained(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each architecture's tokens_seen and tokens/s (from the table rows, or the cached results)."""
    rows = report["architectures"]
    if all("tokens_seen" in r for r in rows):
        return list(rows)
    steps = report["budget"]["max_steps"] * report["budget"]["batch_size"] * report["budget"]["seq_len"]
    return [{"tokens_seen": steps, "tokens_per_second": r["tokens_per_second"]} for r in rows]


def published_budget(tokens: str, seconds: float) -> dict[str, Any]:
    print(f"\n3. lts train gpt2_a9e3 with the published budget, for {seconds:.0f} s, then Ctrl-C")
    with workspace(tokens) as home:
        env = {**os.environ, "LTS_HOME": home}
        start = time.perf_counter()
        # SIGINT as a terminal's Ctrl-C sends it: a background job starts with it ignored, which a child inherits.
        proc = subprocess.Popen([sys.executable, "-m", "lts_cli", "train", "gpt2_a9e3"], stderr=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, env=env, text=True, cwd=HERE,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
        lines: list[tuple[float, str]] = []
        peak = [0.0]

        def read() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                lines.append((time.perf_counter() - start, line.rstrip()))
                print(f"   [{lines[-1][0]:6.1f} s] {line.rstrip()}", flush=True)

        def watch() -> None:
            process = psutil.Process(proc.pid)
            while proc.poll() is None:
                try:
                    peak[0] = max(peak[0], process.memory_info().rss / 2**20)
                except psutil.Error:
                    return
                time.sleep(0.2)

        threads = [threading.Thread(target=read, daemon=True), threading.Thread(target=watch, daemon=True)]
        for t in threads:
            t.start()
        while proc.poll() is None and time.perf_counter() - start < seconds:
            time.sleep(1)
        alive = proc.poll() is None
        interrupted = time.perf_counter()
        if alive:
            proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=120)
        for t in threads:
            t.join(timeout=5)
    estimate = next(((t, line) for t, line in lines if "training tokens/s here" in line), None)
    split = next((line for _, line in lines if line.startswith("batch 64 as")), None)
    record = {"ran_s": seconds, "alive_until_ctrl_c": alive, "exit_code": code, "peak_rss_mib": peak[0],
              "stopped_in_s": time.perf_counter() - interrupted, "estimate_at_s": estimate[0] if estimate else None,
              "estimate": estimate[1] if estimate else None, "split": split,
              "stderr": [line for _, line in lines]}  # fmt: skip
    print(f"   peak RSS {peak[0]:,.0f} MiB; exit {code} {record['stopped_in_s']:.1f} s after Ctrl-C")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="a folder with an earlier lts_cli, run side by side")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--a9e3-seconds", type=float, default=150.0)
    parser.add_argument("--skip", nargs="*", default=[], choices=["short", "proxy", "published"])
    args = parser.parse_args()
    versions = {"this": HERE, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    record: dict[str, Any] = {"load": os.getloadavg()[0], "versions": {k: str(v) for k, v in versions.items()}}
    print(f"load {record['load']:.2f}; versions: {record['versions']}")
    with tempfile.TemporaryDirectory() as tokens:
        with workspace(tokens) as home:  # fill the token cache once, outside the timings
            arch = Path(home) / "tiny.json"
            arch.write_text(json.dumps(TINY))
            run_lts(home, "train", str(arch), "--max-steps", "1", "--seq-len", "32", "--batch-size", "2")
        if "short" not in args.skip:
            record["short_training"] = short_training(versions, tokens, args.repeats)
        if "proxy" not in args.skip:
            record["proxy"] = proxy(versions, tokens)
        if "published" not in args.skip:
            record["published_budget"] = published_budget(tokens, args.a9e3_seconds)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"train-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(record, indent=2))
    print(f"\nraw results: {path}")


if __name__ == "__main__":
    main()
