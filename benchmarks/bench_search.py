"""`make bench-search`: the reduced search budget that archai was timed with, run by `lts search`.

Budget (as measured for archai 1.0.0 on this machine: 22 architectures in 529 s, 24.1 s each, 14.0 s
of it overhead, peak RSS 10.9 GB): 4 generations, 4 initial models, 2 random, 2 crossovers,
1 mutation per parent, at most 6 unseen, seed 1, seq 1024, 1 thread. lts times each architecture
adaptively (at least 5 runs, until the 95% CI of the mean is within 3%, at most 25).

Reports, from one cold run in a fresh workspace: wall and overhead (wall minus timed runs) per
evaluated architecture, peak RSS of the `lts search` process and its RSS early vs. late in the run
(sampled every 0.2 s), the front and its hypervolume; then the same search again (every measurement
a cache hit); then the repeatability of the adaptive rule: the front's architectures measured again
(`lts profile --adaptive --no-cache`) against the values the search recorded.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from common import run_lts

BUDGET = [
    "--generations", "4", "--init-models", "4", "--random-mix", "2", "--crossovers", "2",
    "--mutations-per-parent", "1", "--max-unseen", "6", "--seed", "1", "--seq-len", "1024", "--threads", "1",
]  # fmt: skip
RESULTS = Path(__file__).parent / "results"


def main() -> None:
    load = os.getloadavg()[0]
    print(f"lts search, reduced budget ({' '.join(BUDGET)}); load {load:.2f}")
    with tempfile.TemporaryDirectory() as home:
        stdout, wall, peak, samples = run_lts(home, "search", *BUDGET, "--name", "cold", "--json")
        s = json.loads(stdout)
        t = s["timings"]
        n = t["evaluated"]
        overhead = (wall - t["timed_runs_s"]) / n
        quarter = max(1, len(samples) // 4)
        print(f"evaluated {n} architectures ({t['cached']} cached) in {wall:.1f} s: {wall / n:.2f} s each")
        print(f"timed runs {t['timed_runs_s']:.1f} s; overhead (wall - timed runs) {overhead:.2f} s per architecture")
        print(
            f"peak RSS {peak:.0f} MiB (sampled every 0.2 s); RSS max in the first / last quarter of the run "
            f"{max(samples[:quarter]):.0f} / {max(samples[-quarter:]):.0f} MiB"
        )
        print(f"hypervolume per generation: {', '.join(f'{v:.4f}' for v in s['hypervolume']['per_generation'])}")
        print(f"Pareto front ({len(s['front'])}):")
        print(
            f"  {'archid':<16} {'L':>2} {'d_model':>7} {'d_inner':>7} {'heads':>5} {'params M':>8} "
            f"{'latency s':>9} {'MiB':>7}"
        )
        for m in s["front"]:
            print(
                f"  {m['archid'][:16]:<16} {m['n_layer']:>2} {m['d_model']:>7} {m['d_inner']:>7} {m['n_head']:>5} "
                f"{m['non_embedding_params'] / 1e6:>8.2f} {m['onnx_latency']:>9.4f} {m['onnx_memory']:>7.2f}"
            )

        stdout2, wall2, _, _ = run_lts(home, "search", *BUDGET, "--name", "warm", "--json")
        t2 = json.loads(stdout2)["timings"]
        print(f"\nidentical second run: {wall2:.1f} s, {t2['cached']}/{t2['evaluated']} cached")

        print("\nadaptive repeatability: front members measured again (--adaptive --no-cache) vs the search's values")
        diffs = []
        for m in s["front"]:
            again, _, _, _ = run_lts(
                home, "profile", m["archid"], "--seq-len", "1024", "--adaptive", "--no-cache", "--json"
            )
            value = json.loads(again)["latency_s"]
            diffs.append(abs(value - m["onnx_latency"]) / m["onnx_latency"])
            print(f"  {m['archid'][:16]}  search {m['onnx_latency']:.4f} s, again {value:.4f} s ({diffs[-1]:.1%})")
        print(f"relative difference: median {statistics.median(diffs):.1%}, max {max(diffs):.1%}")

    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"search-{time.strftime('%Y%m%d-%H%M%S')}.json"
    record = {
        "load": load,
        "wall_s": wall,
        "evaluated": n,
        "overhead_per_arch_s": overhead,
        "peak_rss_mib": peak,
        "rss_samples_mib": samples,
        "second_run_wall_s": wall2,
        "repeat_rel_diffs": diffs,
        "summary": s,
    }
    path.write_text(json.dumps(record, indent=2))
    print(f"\nraw results: {path}")


if __name__ == "__main__":
    main()
