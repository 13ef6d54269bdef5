"""`make bench-search`: the three ways to search, each from an empty workspace, on this machine.

For each seed (`--seeds`, default 1 2 3), one after another (nothing else should run meanwhile):
  plain        `lts search --no-screen`: the published procedure, every proposal timed;
  screened     `lts search`: the default, screened evolution;
  whole-space  `lts search --strategy whole-space`;
plus any `--variant NAME="FLAGS"` (e.g. screened20="--screen-measure 0.2"), all with `--seed S`.
Every run is kept with its records (strategies.runs.json); `--reuse plain` judges the others against
the plain runs kept there instead of rerunning them (then not back to back: the output says so);
`--reuse NAME ...` does so for any kept run.
`--baseline screened --skip plain` judges against the screened run instead (no plain run: an hour a
seed on a 2-core machine).

Every run is judged under one normalization, the baseline (plain) run's bounds of that seed: the
hypervolume of its final measured front, the architectures it measured, its wall time (the
process, start to exit), and the search time at which its measured front first reached the
baseline's final hypervolume (from each record's search wall time; "-" if never). The hypervolume is computed twice,
by pareto.hypervolume's 3-D sweep and by the generic slicing recursion, as a check. The ratios to
the baseline are per seed; the medians over seeds are printed last, and everything goes to
benchmarks/results/strategies.json. On a shared machine the speed drifts between runs: the same
generation 1 (same seed) timed 1.41x slower in one run than in the run before it. Each row says how
much (generation 1's latency bound against the baseline's) and also judges each run under its own
bounds, which a uniform slowdown does not move. Last (unless --no-retime), every architecture on any
run's final front is timed again, all together in one shuffled pass, and each run's front is judged
on those times: the comparison that drift cannot bias. `--rejudge` reruns only the judging.
A whole-space run beside a screened one also says what kept it from the screened front's members
it did not measure: the latency model's error beyond its margin, or a rank below what it measured.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import tempfile
from pathlib import Path
from typing import Any

from common import run_lts

from lts_cli.objectives import PREDICTABLE

RESULTS = Path(__file__).parent / "results"
BASE = {"plain": ["--no-screen"], "screened": [], "whole-space": ["--strategy", "whole-space"]}


def normalized(values: dict[str, float], names: list[str], bounds: dict[str, float]) -> tuple[float, ...]:
    from lts_cli import objectives as registry

    return tuple((1 - values[n] / bounds[n]) if registry.get(n).maximize else values[n] / bounds[n] for n in names)


def front_hv(points: list[tuple[float, ...]], check: bool = False) -> float:
    from lts_cli.pareto import _hv, hypervolume, pareto_front

    front = [points[i] for i in pareto_front(points)]
    hv = hypervolume(front, [1.0] * len(front[0])) if front else 0.0
    if check and front:
        inside = [p for p in front if all(x < 1 for x in p)]
        assert abs(_hv(inside, tuple([1.0] * len(front[0]))) - hv) < 1e-9, "the two hypervolume algorithms disagree"
    return hv


def one_run(seed: int, flags: list[str]) -> dict[str, Any]:
    """A search from an empty workspace: wall, what it measured, and its records (for judging later)."""
    with tempfile.TemporaryDirectory() as home:
        stdout, wall, peak, _ = run_lts(home, "search", "--seed", str(seed), "--no-plots", "--name", "b", "--json",
                                        *flags)  # fmt: skip
        state = json.loads((Path(home) / "runs" / "b" / "state.json").read_text())
    summary = json.loads(stdout)
    return {
        "wall_s": wall,
        "search_wall_s": summary["timings"]["search_wall_s"],
        "measured": summary["timings"]["measured"],
        "peak_rss_mib": peak,
        "bounds": summary["hypervolume"]["normalization_bounds"],
        "objectives": list(summary["objectives"]),
        "share_of_predicted_optimum": summary["hypervolume"].get("share_of_predicted_optimum"),
        "stopped": summary.get("stopped"),
        "records": [(r["values"], r["walltime_s"], r["arch"]) for r in state["records"]],
    }


def judge(
    run: dict[str, Any], bounds: dict[str, float], names: list[str], target: float | None, count: int | None = None
) -> dict[str, Any]:
    """The hypervolume of the run's final front, when it first reached `target`, and the hypervolume
    of the front of its first `count` measurements (the baseline's count: at equal measurements)."""
    points = [(normalized(v, names, bounds), t) for v, t, *_ in sorted(run["records"], key=lambda r: r[1])]
    hv = front_hv([p for p, _ in points], check=True)
    first = front_hv([p for p, _ in points[:count]]) if count else None
    reached = None
    if target is not None:  # the first record after which the measured front holds the target
        for k in range(1, len(points) + 1):
            if front_hv([p for p, _ in points[:k]]) >= target * (1 - 1e-9):
                reached = points[k - 1][1]
                break
    shares = run["share_of_predicted_optimum"] or [None]
    return {"hypervolume": hv, "reached_baseline_at_s": reached, "final_share": shares[-1], "at_count": first}


def front_archs(run: dict[str, Any], names: list[str], bounds: dict[str, float]) -> list[dict[str, Any]]:
    """The architectures on a run's final measured front (runs kept before archs were: none)."""
    from lts_cli.pareto import pareto_front

    records = [r for r in run["records"] if len(r) == 3]
    return [records[i][2] for i in pareto_front([normalized(v, names, bounds) for v, *_ in records])]


def retime(runs: dict[str, dict[str, Any]], names: list[str], bounds: dict[str, float]) -> dict[str, dict[str, float]]:
    """Every architecture on any run's final front, timed again in one shuffled pass (a fresh
    workspace, no cache), so that the runs are compared on one state of the machine: consecutive
    runs on a shared machine are not. About 4 s an architecture here: 100-120 for screened and
    whole-space fronts, several hundred more with a plain run's."""
    import os
    import random

    from lts_cli.measurer import Measurer
    from lts_cli.search_config import SearchConfig
    from lts_cli.space import Arch
    from lts_cli.store import open_store

    archs = {a.archid: a for r in runs.values() for a in (Arch(**d) for d in front_archs(r, names, bounds))}
    order = sorted(archs)
    random.Random(0).shuffle(order)
    print(f"  timing the {len(order)} architectures of the final fronts again, together", flush=True)
    with tempfile.TemporaryDirectory() as home:
        os.environ["LTS_HOME"] = home
        try:
            with open_store() as store:
                measurer = Measurer(SearchConfig().measure, names, store, use_cache=False)
                return {i: dict(measurer.evaluate(archs[i]).values) for i in order}
        finally:
            del os.environ["LTS_HOME"]


def retimed_hv(
    run: dict[str, Any], values: dict[str, dict[str, float]], names: list[str], bounds: dict[str, float]
) -> float | None:
    """The hypervolume of a run's final front with every member's values as timed again."""
    from lts_cli.space import Arch

    members = front_archs(run, names, bounds)
    if not members:
        return None
    return front_hv([normalized(values[Arch(**a).archid], names, bounds) for a in members])


def what_limited(
    mine: dict[str, Any], other: dict[str, Any], names: list[str], bounds: dict[str, float]
) -> dict[str, Any]:
    """Why a whole-space run's front falls short of another run's: the other front's members it never
    measured, the hypervolume they would have added to its front, and, for each, whether the latency
    model fitted on everything the run measured predicted it slower than measured by more than the
    model's margin (the model's error) or within it (the margin and the measurement budget: ranked
    below the architectures it measured)."""
    from lts_cli import objectives as registry
    from lts_cli.predictor import fit
    from lts_cli.search_config import SearchConfig
    from lts_cli.space import Arch

    settings = SearchConfig().measure
    seen = {Arch(**a).archid for *_, a in mine["records"]}
    values = {Arch(**a).archid: v for v, _, a in other["records"]}
    missed = [(values[Arch(**a).archid], Arch(**a)) for a in front_archs(other, names, bounds)
              if Arch(**a).archid not in seen]  # fmt: skip
    points = [normalized(v, names, bounds) for v, *_ in mine["records"]]
    hv = front_hv(points)
    added = front_hv(points + [normalized(v, names, bounds) for v, _ in missed]) / hv - 1 if hv else 0.0
    beyond, errors, margins = 0, [], []
    for name in (n for n in names if registry.get(n).predictable):
        kind = registry.get(name).source
        model = fit([(Arch(**a), v[name]) for v, _, a in mine["records"]], kind, settings.key(kind))
        margins.append(model.margin)
        for v, arch in missed:
            error = float(model.predict(arch) / v[name] - 1)  # > 0: predicted slower than it is
            errors.append(error)
            beyond += int(error > model.margin)
    return {"missed": len(missed), "would_add": added, "median_error": median(errors),
            "beyond_margin": beyond, "predictions": len(errors),
            "margin": max(margins, default=0.0)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument("--variant", action="append", default=[], metavar='NAME="FLAGS"')
    parser.add_argument("--skip", nargs="*", default=[], help="strategies of BASE not to run (not the baseline)")
    parser.add_argument("--baseline", default="plain", help="the run whose bounds and hypervolume judge the others")
    parser.add_argument("--out", type=Path, default=RESULTS / "strategies.json")
    parser.add_argument("--reuse", nargs="*", default=[], metavar="NAME", help="take these runs from the last time")
    parser.add_argument("--no-retime", action="store_true", help="do not time the final fronts again together")
    parser.add_argument("--rejudge", action="store_true", help="run nothing: judge the runs kept last time again")
    args = parser.parse_args()
    variants = {k: v for k, v in BASE.items() if k not in args.skip}
    if args.baseline not in variants and args.baseline not in (v.split("=", 1)[0] for v in args.variant):
        parser.error(f"--baseline {args.baseline} is not run (see --skip)")
    variants |= {name: shlex.split(flags) for name, flags in (v.split("=", 1) for v in args.variant)}
    rows: list[dict[str, Any]] = []
    kept = args.out.with_suffix(".runs.json")
    earlier = json.loads(kept.read_text()) if (args.reuse or args.rejudge) and kept.exists() else {}
    for seed in args.seeds:
        runs = {}
        for name, flags in variants.items():
            if args.rejudge:
                runs[name] = earlier[str(seed)][name]
                continue
            if name in args.reuse and name in earlier.get(str(seed), {}):  # not back to back
                runs[name] = earlier[str(seed)][name]
                print(f"seed {seed} {name:<12} reused from {kept}", flush=True)
                continue
            runs[name] = one_run(seed, flags)
            r = runs[name]
            print(f"seed {seed} {name:<12} {r['wall_s']:7.1f} s wall, {r['measured']:4d} measured", flush=True)
        kept.parent.mkdir(exist_ok=True)  # every run with its records, to judge again later
        everything = json.loads(kept.read_text()) if kept.exists() else {}
        kept.write_text(json.dumps({**everything, str(seed): {**everything.get(str(seed), {}), **runs}}))
        base = runs[args.baseline]
        bounds, names = base["bounds"], base["objectives"]
        target = judge(base, bounds, names, None)["hypervolume"]
        again = None if args.no_retime else retime(runs, names, bounds)
        target_again = retimed_hv(base, again, names, bounds) if again else None
        for name, r in runs.items():
            j = judge(r, bounds, names, target, base["measured"])
            # The same seed measures the same generation 1, so its latency bounds differ only by how fast
            # the machine ran; each run under its own bounds is immune to a uniform slowdown.
            drift = ", ".join(f"{r['bounds'][n] / bounds[n]:.2f}x" for n in names if n in PREDICTABLE) or "-"
            own = judge(r, r["bounds"], names, None)["hypervolume"] / target
            row = {"seed": seed, "strategy": name, "flags": variants[name],
                   **{k: v for k, v in r.items() if k != "records"}, **j, "wall_ratio": r["wall_s"] / base["wall_s"],
                   "hypervolume_ratio": j["hypervolume"] / target, "machine_drift": drift,
                   "hypervolume_ratio_own_bounds": own,
                   "hypervolume_ratio_same_count": j["at_count"] / target}  # fmt: skip
            hv_again = retimed_hv(r, again, names, bounds) if again else None
            row["hypervolume_ratio_retimed"] = hv_again / target_again if hv_again and target_again else None
            rows.append(row)
            at = f"{j['reached_baseline_at_s']:.0f} s" if j["reached_baseline_at_s"] is not None else "never"
            share = f"{j['final_share']:.1%}" if j["final_share"] is not None else "-"
            print(f"  {name:<12} hypervolume {j['hypervolume']:.4f} ({row['hypervolume_ratio']:.3f}x {args.baseline}), "
                  f"wall {row['wall_ratio']:.2f}x, measured {r['measured']}, "
                  f"reaches {args.baseline}'s hypervolume at {at}, "
                  f"share of predicted optimum {share}, stopped: {r['stopped'] or '-'}; generation 1 timed "
                  f"{drift} {args.baseline}'s, hypervolume under own bounds {own:.3f}x, after its first "
                  f"{base['measured']} measurements {row['hypervolume_ratio_same_count']:.3f}x, "
                  f"fronts timed again together {ratio(row['hypervolume_ratio_retimed'])}", flush=True)  # fmt: skip
            if "whole-space" in variants[name] and "screened" in runs:
                row["short_of_screened"] = why = what_limited(r, runs["screened"], names, bounds)
                print(f"    of the screened front, {why['missed']} never measured (measured, they would add "
                      f"{why['would_add']:.1%} to its hypervolume); its latency model, fitted on all it measured, "
                      f"predicts them {ratio(1 + why['median_error']) if why['median_error'] is not None else '-'} "
                      f"their latency (median), {why['beyond_margin']} of {why['predictions']} slower by more "
                      f"than its margin ({why['margin']:.1%})", flush=True)  # fmt: skip
        args.out.parent.mkdir(exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"\nmedians over seeds (ratios per seed to the {args.baseline} run of that seed):")
    for name in variants:
        mine = [r for r in rows if r["strategy"] == name]
        print(f"  {name:<12} wall {statistics.median(r['wall_s'] for r in mine):7.1f} s "
              f"({statistics.median(r['wall_ratio'] for r in mine):.2f}x), measured "
              f"{statistics.median(r['measured'] for r in mine):.0f}, hypervolume "
              f"{statistics.median(r['hypervolume_ratio'] for r in mine):.3f}x "
              f"(own bounds {statistics.median(r['hypervolume_ratio_own_bounds'] for r in mine):.3f}x, at the "
              f"{args.baseline}'s count {statistics.median(r['hypervolume_ratio_same_count'] for r in mine):.3f}x, "
              f"timed again {ratio(median([r['hypervolume_ratio_retimed'] for r in mine]))})")  # fmt: skip


def ratio(x: float | None) -> str:
    return f"{x:.3f}x" if x is not None else "-"


def median(xs: list[float | None]) -> float | None:
    known = [x for x in xs if x is not None]
    return statistics.median(known) if known else None


if __name__ == "__main__":
    main()
