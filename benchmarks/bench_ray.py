"""`make bench-ray`: what measuring through Ray costs, and why one slot per node.

1. Ray's overhead per architecture: archai's reduced-budget search (as in bench-search) run by
   `lts search --executor local` and `lts search --executor ray` (a local Ray instance with one
   `lts_bench` slot, started by lts), each from an empty workspace, alternating, `--repeats` times.
   Overhead = search wall time minus the time the measurements themselves took (where they ran),
   per evaluated architecture; Ray's share is the difference between the two (medians).
2. One slot against two on this machine: the same `--archs` random architectures (default space and
   settings) measured by a Ray executor with 1 and then 2 `lts_bench` slots, no cache: wall time
   (throughput) and each architecture's latency with 2 concurrent measurements against 1 (median
   ratio): what running two measurements at once on one node does to the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_search import BUDGET
from common import run_lts

RESULTS = Path(__file__).parent / "results"


def search_overheads(repeats: int) -> dict[str, Any]:
    rows: dict[str, list[dict[str, float]]] = {"local": [], "ray": []}
    for _ in range(repeats):
        for executor in ("local", "ray"):
            with tempfile.TemporaryDirectory() as home:
                stdout, wall, peak, _ = run_lts(home, "search", *BUDGET, "--executor", executor, "--no-plots", "--json")
            data = json.loads(stdout)
            t = data["timings"]
            n = t["evaluated"]
            overhead = (t["search_wall_s"] - t["timed_runs_s"]) / n
            rows[executor].append(
                {"process_wall_s": wall, "search_wall_s": t["search_wall_s"], "evaluated": n,
                 "overhead_per_arch_s": overhead, "peak_rss_mib": peak}
            )  # fmt: skip
            print(
                f"  {executor:<5} {n} archs, search {t['search_wall_s']:.1f} s, process {wall:.1f} s, "
                f"overhead {overhead:.3f} s/arch, peak RSS {peak:.0f} MiB",
                flush=True,
            )
    local = statistics.median(r["overhead_per_arch_s"] for r in rows["local"])
    ray = statistics.median(r["overhead_per_arch_s"] for r in rows["ray"])
    startup = statistics.median(r["process_wall_s"] - r["search_wall_s"] for r in rows["ray"]) - statistics.median(
        r["process_wall_s"] - r["search_wall_s"] for r in rows["local"]
    )
    print(
        f"Ray's overhead per architecture (median): {ray - local:+.3f} s; Ray start-up once per search: {startup:.1f} s"
    )
    return {"runs": rows, "ray_overhead_per_arch_s": ray - local, "ray_startup_s": startup}


def slots(count: int, archs: int) -> dict[str, Any]:
    import ray

    from lts_cli.config import SearchConfig
    from lts_cli.distributed import BENCH, RayExecutor
    from lts_cli.store import open_store

    config = SearchConfig()
    rng = random.Random(5)
    sample = config.space.within(config.min_params, 2e7)
    chosen = rng.sample(sample, archs)
    ray.init(address="local", num_cpus=os.cpu_count(), resources={BENCH: count}, include_dashboard=False,
             logging_level="ERROR", log_to_driver=False)  # fmt: skip
    try:
        with open_store() as store:
            executor = RayExecutor(config.measure, ("onnx_latency",), store, "bench", use_cache=False)
            executor.map(chosen[:1], lambda i: None).__next__()  # warm the worker(s) up: imports, not timings
            start = time.perf_counter()
            latencies = {}
            for i, measured in executor.map(chosen, lambda i: None):
                latencies[chosen[i].archid] = measured.values["onnx_latency"]
            wall = time.perf_counter() - start
    finally:
        ray.shutdown()
    print(f"  {count} slot(s): {archs} architectures in {wall:.1f} s", flush=True)
    return {"wall_s": wall, "latency_s": latencies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--archs", type=int, default=16)
    args = parser.parse_args()
    record: dict[str, Any] = {"load": os.getloadavg()[0]}
    print(f"1. reduced-budget search, local vs Ray (1 slot), {args.repeats} times each; load {record['load']:.2f}")
    record["search"] = search_overheads(args.repeats)
    print(f"\n2. {args.archs} architectures (up to 2e7 parameters, seq 1024), Ray with 1 and 2 slots")
    with tempfile.TemporaryDirectory() as home:
        os.environ["LTS_HOME"] = home
        one, two = slots(1, args.archs), slots(2, args.archs)
    ratios = [two["latency_s"][a] / one["latency_s"][a] for a in one["latency_s"]]
    record["slots"] = {"one": one, "two": two, "median_latency_ratio": statistics.median(ratios)}
    print(
        f"throughput with 2 slots: {one['wall_s'] / two['wall_s']:.2f}x of 1 slot; latency measured 2 at a time "
        f"vs 1 at a time: median ratio {statistics.median(ratios):.2f} (range {min(ratios):.2f}..{max(ratios):.2f})"
    )
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"ray-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(record, indent=2))
    print(f"\nraw results: {path}")


if __name__ == "__main__":
    main()
