"""`make bench-search`: the reduced search budget that archai was timed with, run by `lts search`.

Budget (as measured for archai 1.0.0 on this machine: 22 architectures in 529 s, 24.1 s each, 14.0 s
of it overhead, peak RSS 10.9 GB): 4 generations, 4 initial models, 2 random, 2 crossovers,
1 mutation per parent, at most 6 unseen, seed 1, seq 1024, 1 thread. lts times each architecture
adaptively (at least 5 runs, until the 95% CI of the mean is within 3%, at most 25).

Reports, each from a cold run in a fresh workspace: wall and overhead (wall minus timed runs) per
evaluated architecture, peak RSS, the front and its hypervolume, for
  1. the published objectives (non_embedding_params, onnx_latency, onnx_memory);
  2. the same search again (every measurement a cache hit);
  3. --objectives non_embedding_params,decode_latency,onnx_memory (one with-past graph per architecture);
then, with `--against REF` (a git revision), the published search of that revision and of this
checkout in alternating order, `--repeats` times each, so the two are compared side by side on one
machine (medians quoted); and the repeatability of the adaptive rule: the front's architectures
measured again (`lts profile --adaptive --no-cache`) against the values the search recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from common import run_lts

BUDGET = [
    "--generations", "4", "--init-models", "4", "--random-mix", "2", "--crossovers", "2",
    "--mutations-per-parent", "1", "--max-unseen", "6", "--seed", "1", "--seq-len", "1024", "--threads", "1",
    "--no-screen",
]  # fmt: skip
DECODE = ["--objectives", "non_embedding_params,decode_latency,onnx_memory"]
ROOT = Path(__file__).parent.parent
RESULTS = Path(__file__).parent / "results"


def search(extra: list[str], source: Path | None = None, home: str | None = None) -> dict[str, Any]:
    """One `lts search` (cold unless `home` is given): timings per architecture and the summary."""
    with tempfile.TemporaryDirectory() as fresh:
        stdout, wall, peak, _ = run_lts(home or fresh, "search", *BUDGET, *extra, "--json", source=source)
    s = json.loads(stdout)
    t = s["timings"]
    n = t["evaluated"]
    return {
        "wall_s": wall,
        "evaluated": n,
        "cached": t["cached"],
        "s_per_arch": wall / n,
        "timed_runs_s": t["timed_runs_s"],
        "overhead_per_arch_s": (wall - t["timed_runs_s"]) / n,
        "peak_rss_mib": peak,
        "summary": s,
    }


def report(title: str, r: dict[str, Any]) -> None:
    s = r["summary"]
    objectives = list(s["objectives"])
    print(f"\n{title}")
    print(
        f"  evaluated {r['evaluated']} ({r['cached']} cached) in {r['wall_s']:.1f} s: {r['s_per_arch']:.2f} s each; "
        f"timed runs {r['timed_runs_s']:.1f} s; overhead {r['overhead_per_arch_s']:.2f} s per architecture; "
        f"peak RSS {r['peak_rss_mib']:.0f} MiB"
    )
    print(f"  hypervolume per generation: {', '.join(f'{v:.4f}' for v in s['hypervolume']['per_generation'])}")
    print(f"  Pareto front ({len(s['front'])}): " + ", ".join(f"{m['archid'][:12]}" for m in s["front"]))
    for m in s["front"]:
        values = "  ".join(f"{o} {m[o]:.4g}" for o in objectives)
        print(f"    {m['archid'][:16]} L{m['n_layer']} d{m['d_model']} ff{m['d_inner']} h{m['n_head']}: {values}")


def checkout(ref: str, into: Path) -> Path:
    """The package of git revision `ref`, unpacked into `into` (run with PYTHONPATH)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "lts_cli"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REF", help="also run the published search of this git revision")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side with --against")
    parser.add_argument("--skip-repeatability", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"lts search, reduced budget ({' '.join(BUDGET)}); load {load:.2f}")
    record: dict[str, Any] = {"load": load}

    with tempfile.TemporaryDirectory() as home:
        published = search([], home=home)
        report("1. published objectives, cold", published)
        warm = search([], home=home)
        print(f"\n2. identical second run: {warm['wall_s']:.1f} s, {warm['cached']}/{warm['evaluated']} cached")
        decode = search(DECODE)
        report(f"3. {' '.join(DECODE)}, cold", decode)
        record.update(published=published, second_run_wall_s=warm["wall_s"], decode=decode)

        if args.against:
            with tempfile.TemporaryDirectory() as old:
                source = checkout(args.against, Path(old))
                sides: dict[str, list[dict[str, Any]]] = {"this": [], args.against: []}
                for i in range(args.repeats):
                    order = [("this", None), (args.against, source)]
                    for name, src in order if i % 2 == 0 else order[::-1]:
                        sides[name].append(search([], source=src))
                print(f"\n4. published search, this checkout vs {args.against}, alternating, {args.repeats} runs each")
                for name, runs in sides.items():
                    per = [r["s_per_arch"] for r in runs]
                    over = [r["overhead_per_arch_s"] for r in runs]
                    print(
                        f"  {name:>12}: s/arch {', '.join(f'{v:.2f}' for v in per)} "
                        f"(median {statistics.median(per):.2f}); overhead/arch {', '.join(f'{v:.2f}' for v in over)} "
                        f"(median {statistics.median(over):.2f})"
                    )
                record["against"] = {
                    name: [{k: v for k, v in r.items() if k != "summary"} for r in runs] for name, runs in sides.items()
                }

        if not args.skip_repeatability:
            print("\n5. adaptive repeatability: front members measured again (--adaptive --no-cache)")
            diffs = []
            for m in published["summary"]["front"]:
                again, _, _, _ = run_lts(
                    home, "profile", m["archid"], "--seq-len", "1024", "--adaptive", "--no-cache", "--json",
                    "--objectives", "onnx_latency",
                )  # fmt: skip
                value = json.loads(again)["objectives"]["onnx_latency"]
                diffs.append(abs(value - m["onnx_latency"]) / m["onnx_latency"])
                print(f"  {m['archid'][:16]}  search {m['onnx_latency']:.4f} s, again {value:.4f} s ({diffs[-1]:.1%})")
            print(f"  relative difference: median {statistics.median(diffs):.1%}, max {max(diffs):.1%}")
            record["repeat_rel_diffs"] = diffs

    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"search-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(record, indent=2))
    print(f"\nraw results: {path}")


if __name__ == "__main__":
    main()
