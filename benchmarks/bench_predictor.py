"""`make bench-predictor`: the per-machine latency model and the screened search, on this machine.

1. Accuracy: `--archs` (60) random architectures of the default space (seed 7, 1e6..1e9 non-embedding
   parameters) measured with the search's default settings (seq 1024, batch 1, 1 thread, adaptive);
   the model fitted on half, tested on the other half: Spearman, median and 90th-percentile absolute
   error; then the learning curve (fitted on 5, 10, 20, 40, tested on the same held-out half), and
   five different random halves to show the spread.
2. Screened vs plain: `lts search` with the published objectives, same seed and generations, each
   from an empty workspace, `--seeds` seeds each; wall time, architectures timed, and the final
   measured fronts' hypervolume under one normalization (the plain run's bounds for both).
3. With `--full`: the 10-generation default search with --screen: wall time and architectures timed.

The measurements of 1. stay in `--home` (a folder kept between runs) so that the model can be
studied again without measuring: `--reuse` skips measuring what is cached there.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from common import run_lts

RESULTS = Path(__file__).parent / "results"


def measure_sample(home: Path, count: int) -> list[tuple[Any, float]]:
    """Measure `count` random architectures with the search's default settings (cached in `home`)."""
    os.environ["LTS_HOME"] = str(home)
    from lts_cli.measurer import Measurer
    from lts_cli.search_config import SearchConfig
    from lts_cli.store import open_store

    config = SearchConfig()
    rng = random.Random(7)
    archs: dict[str, Any] = {}
    while len(archs) < count:
        arch = config.space.sample(rng)
        if config.min_params <= arch.non_embedding_params <= config.max_params:
            archs[arch.archid] = arch
    rows = []
    with open_store() as store:
        measurer = Measurer(config.measure, ("onnx_latency",), store, source="bench")
        for i, arch in enumerate(archs.values(), 1):
            m = measurer.evaluate(arch).prefill
            assert m is not None
            rows.append((arch, m.latency_s))
            print(
                f"  {i:>3}/{count} {arch.short():<22} {m.latency_s:.4f} s{' (cached)' if m.cached else ''}", flush=True
            )
    return rows


def summary(acc: Any, train: int) -> dict[str, Any]:
    """A predictor.Accuracy as the numbers this benchmark records."""
    return {"train": train, "test": acc.n, "spearman": acc.spearman, "median_abs_error": acc.errors.median,
            "p90_abs_error": acc.errors.p90}  # fmt: skip


def accuracy(rows: list[tuple[Any, float]]) -> dict[str, Any]:
    from lts_cli.predictor import fit, held_out
    from lts_cli.search_config import SearchConfig

    settings = SearchConfig().measure.key("prefill")
    half = len(rows) // 2
    main = summary(held_out(rows, "prefill", settings, train=half, seed=0), half)
    print(
        f"\n1. fitted on {half}, tested on {main['test']}: Spearman {main['spearman']:.4f}, median abs error "
        f"{main['median_abs_error']:.1%}, 90th percentile {main['p90_abs_error']:.1%}"
    )
    curve = []
    for train in (5, 10, 20, 40):
        if train > half:
            continue
        try:
            r = summary(held_out(rows, "prefill", settings, train=train, seed=0), train)
        except Exception as exc:  # fewer than the model needs
            print(f"   fitted on {train:>2}: {exc}")
            continue
        curve.append(r)
        print(
            f"   fitted on {train:>2}: Spearman {r['spearman']:.4f}, median {r['median_abs_error']:.1%}, "
            f"p90 {r['p90_abs_error']:.1%} (tested on {r['test']})"
        )
    splits = [summary(held_out(rows, "prefill", settings, train=half, seed=s), half) for s in range(1, 6)]
    print(
        "   five other random halves: median "
        + ", ".join(f"{r['median_abs_error']:.1%}" for r in splits)
        + "; p90 "
        + ", ".join(f"{r['p90_abs_error']:.1%}" for r in splits)
    )
    model = fit(rows, "prefill", settings)
    print(
        "   coefficients (all measurements): "
        + ", ".join(f"{k} {v:.3g}" for k, v in model.to_dict()["coefficients"].items())
    )
    return {"held_out": main, "curve": curve, "splits": splits, "model": model.to_dict()}


def searches(generations: int, seeds: list[int]) -> dict[str, Any]:
    from lts_cli import objectives as registry
    from lts_cli.pareto import hypervolume, pareto_front

    out: dict[str, Any] = {"generations": generations, "runs": []}
    print(f"\n2. screened vs plain, {generations} generations, published objectives, seq 1024")
    for seed in seeds:
        pair = {}
        for mode in ("plain", "screened"):
            flags = ["--generations", str(generations), "--seed", str(seed), "--no-plots", "--json"]
            flags += ["--screen"] if mode == "screened" else ["--no-screen"]
            with tempfile.TemporaryDirectory() as home:
                stdout, wall, _, _ = run_lts(home, "search", *flags)
            s = json.loads(stdout)
            pair[mode] = {"wall_s": wall, "timed": s["timings"]["measured"], "summary": s}
        bounds = pair["plain"]["summary"]["hypervolume"]["normalization_bounds"]
        names = list(pair["plain"]["summary"]["objectives"])

        def hv(summary: dict[str, Any], bounds: dict[str, float] = bounds, names: list[str] = names) -> float:
            """The front's hypervolume under the plain run's normalization."""
            points = [
                tuple((1 - m[n] / bounds[n]) if registry.get(n).maximize else m[n] / bounds[n] for n in names)
                for m in summary["front"]
            ]
            return hypervolume([points[i] for i in pareto_front(points)], [1.0] * len(names))

        plain, screened = pair["plain"], pair["screened"]
        row = {
            "seed": seed,
            "plain": {"wall_s": plain["wall_s"], "timed": plain["timed"], "hypervolume": hv(plain["summary"])},
            "screened": {
                "wall_s": screened["wall_s"],
                "timed": screened["timed"],
                "hypervolume": hv(screened["summary"]),
            },
            "screening": [g.get("screening") for g in screened["summary"]["generations_log"]],
        }
        row["wall_ratio"] = row["screened"]["wall_s"] / row["plain"]["wall_s"]
        row["hypervolume_ratio"] = row["screened"]["hypervolume"] / row["plain"]["hypervolume"]
        out["runs"].append(row)
        print(
            f"   seed {seed}: plain {plain['wall_s']:.0f} s, {plain['timed']} timed, hypervolume "
            f"{row['plain']['hypervolume']:.4f}; screened {screened['wall_s']:.0f} s, {screened['timed']} timed, "
            f"hypervolume {row['screened']['hypervolume']:.4f}; wall ratio {row['wall_ratio']:.2f}, "
            f"hypervolume ratio {row['hypervolume_ratio']:.3f}"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=60)
    parser.add_argument("--home", type=Path, default=RESULTS / "predictor-home")
    parser.add_argument("--generations", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--skip-searches", action="store_true")
    parser.add_argument("--full", action="store_true", help="also the 10-generation default search with --screen")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"latency model on this machine; load {load:.2f}")
    args.home.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"load": load}
    print(f"measuring {args.archs} random architectures (cached in {args.home})")
    rows = measure_sample(args.home, args.archs)
    record["accuracy"] = accuracy(rows)
    if not args.skip_searches:
        record["searches"] = searches(args.generations, args.seeds)
    if args.full:
        with tempfile.TemporaryDirectory() as home:
            stdout, wall, _, _ = run_lts(home, "search", "--screen", "--no-plots", "--json")
        s = json.loads(stdout)
        record["full"] = {"wall_s": wall, "timed": s["timings"]["measured"], "generations": s["generations_done"]}
        print(f"\n3. the default 10-generation search with --screen: {wall:.0f} s, {s['timings']['measured']} timed")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"predictor-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(record, indent=2))
    print(f"\nraw results: {path}")


if __name__ == "__main__":
    main()
