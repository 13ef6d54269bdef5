"""`make bench-ray`: what measuring through Ray costs, and why one slot per node.

1. Ray's overhead per architecture: archai's reduced-budget search (as in bench-search) run by
   `lts search --executor local` and `lts search --executor ray` (a local Ray instance with one
   `lts_bench` slot, started by lts), each from an empty workspace, alternating, `--repeats` times.
   Overhead = search wall time minus the time the measurements themselves took (where they ran),
   per evaluated architecture; Ray's share is the difference between the two (medians).
2. The same `--archs` random architectures (default space and settings, no cache) measured here
   without Ray, by a Ray executor with 1 slot, with 2 slots, and here again: wall time (throughput)
   and each architecture's latency against the local one (median ratio over architectures; the two
   local passes bracket the machine's drift). Ray with 1 slot should match local within noise; 2
   slots show what running two measurements at once on one node does to the numbers.
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


def sample(archs: int) -> list[Any]:
    from lts_cli.search_config import SearchConfig

    config = SearchConfig()
    return random.Random(5).sample(config.space.within(config.min_params, 2e7), archs)


def local(chosen: list[Any]) -> dict[str, Any]:
    from lts_cli.machine import fingerprint
    from lts_cli.measuring import measure
    from lts_cli.search_config import SearchConfig

    settings, here = SearchConfig().measure, fingerprint()
    start = time.perf_counter()
    latencies = {a.archid: measure(a, settings, "prefill", here).latency_s for a in chosen}
    wall = time.perf_counter() - start
    print(f"  local: {len(chosen)} architectures in {wall:.1f} s", flush=True)
    return {"wall_s": wall, "latency_s": latencies}


def slots(count: int, chosen: list[Any]) -> dict[str, Any]:
    import ray

    from lts_cli.distributed import BENCH
    from lts_cli.measurer import Failed, Measurer, Where
    from lts_cli.search_config import SearchConfig
    from lts_cli.store import open_store

    config = SearchConfig()
    ray.init(address="local", num_cpus=os.cpu_count(), resources={BENCH: count}, include_dashboard=False,
             logging_level="ERROR", log_to_driver=False)  # fmt: skip
    try:
        with open_store() as store:
            executor = Measurer(config.measure, ("onnx_latency",), store, Where("ray"), False, "bench")
            warm = [chosen[0]] * count  # start the worker(s) and import there: not part of the timing
            list(executor.map(warm, lambda i: None))
            start = time.perf_counter()
            latencies = {}
            for i, measured in executor.map(chosen, lambda i: None):
                if isinstance(measured, Failed):
                    raise RuntimeError(f"{chosen[i].short()} failed on Ray: {measured.reason}")
                latencies[chosen[i].archid] = measured.values["onnx_latency"]
            wall = time.perf_counter() - start
    finally:
        ray.shutdown()
    print(f"  Ray, {count} slot(s): {len(chosen)} architectures in {wall:.1f} s", flush=True)
    return {"wall_s": wall, "latency_s": latencies}


def ratio(a: dict[str, Any], b: dict[str, Any]) -> float:
    return statistics.median(a["latency_s"][k] / b["latency_s"][k] for k in b["latency_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--archs", type=int, default=16)
    parser.add_argument("--skip-search", action="store_true", help="only part 2")
    args = parser.parse_args()
    record: dict[str, Any] = {"load": os.getloadavg()[0]}
    if not args.skip_search:
        print(f"1. reduced-budget search, local vs Ray (1 slot), {args.repeats} times each; load {record['load']:.2f}")
        record["search"] = search_overheads(args.repeats)
    print(f"\n2. {args.archs} architectures (up to 2e7 parameters, seq 1024): here, Ray 1 slot, Ray 2 slots, here")
    chosen = sample(args.archs)
    with tempfile.TemporaryDirectory() as home:
        os.environ["LTS_HOME"] = home
        first, one, two, last = local(chosen), slots(1, chosen), slots(2, chosen), local(chosen)
    record["measure"] = {"local": first, "ray_1": one, "ray_2": two, "local_again": last}
    print(
        f"latency vs the first local pass (median ratio): local again {ratio(last, first):.3f}, Ray 1 slot "
        f"{ratio(one, first):.3f}, Ray 2 slots {ratio(two, first):.3f}; throughput, 2 slots vs 1: "
        f"{one['wall_s'] / two['wall_s']:.2f}x"
    )
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"ray-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(record, indent=2))
    print(f"\nraw results: {path}")


if __name__ == "__main__":
    main()
