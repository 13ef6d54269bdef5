"""PNG plots of a search: one per pair of the chosen objectives (front highlighted), hypervolume per generation."""

from __future__ import annotations

import io
import itertools
from typing import Any

from lts_cli import objectives as registry
from lts_cli.search import Search
from lts_cli.search_state import SearchState


def plot_names(objectives: tuple[str, ...]) -> list[str]:
    """The files `write_plots` makes for these objectives."""
    pairs = itertools.combinations(objectives, 2)
    return [f"pareto_{registry.get(x).short}_vs_{registry.get(y).short}.png" for x, y in pairs] + ["hypervolume.png"]


def write_plots(search: Search, state: SearchState) -> dict[str, bytes]:
    """File name -> PNG bytes; matplotlib is imported here only (Agg backend, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    out: dict[str, bytes] = {}
    objectives = search.config.objectives
    front_ids = {r.archid for r in search.front(state)}
    generations = [r.generation for r in state.records]
    names = iter(plot_names(objectives))
    for x_name, y_name in itertools.combinations(objectives, 2):
        x_obj, y_obj = registry.get(x_name), registry.get(y_name)
        fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
        xs = [x_obj.scaled(r.values[x_name]) for r in state.records]
        ys = [y_obj.scaled(r.values[y_name]) for r in state.records]
        cmap = plt.get_cmap("viridis", max(generations))
        points = ax.scatter(
            xs, ys, c=generations, cmap=cmap, vmin=0.5, vmax=max(generations) + 0.5, s=28, alpha=0.85, label="evaluated"
        )
        front = [(x, y) for x, y, r in zip(xs, ys, state.records, strict=True) if r.archid in front_ids]
        ax.scatter(
            [x for x, _ in front],
            [y for _, y in front],
            s=110,
            facecolors="none",
            edgecolors="red",
            linewidths=1.5,
            label="Pareto front (all objectives)",
        )
        stair = _pair_front(list(zip(xs, ys, strict=True)), x_obj.maximize, y_obj.maximize)
        ax.step(
            [x for x, _ in stair],
            [y for _, y in stair],
            where="pre",
            color="red",
            alpha=0.5,
            label="front of these two",
        )
        bar = fig.colorbar(points, ax=ax, label="generation")
        bar.locator = MaxNLocator(integer=True)
        bar.update_ticks()
        ax.set_xlabel(x_obj.label)
        ax.set_ylabel(y_obj.label)
        better = (
            f"{'higher' if x_obj.maximize else 'lower'} x and {'higher' if y_obj.maximize else 'lower'} y are better"
        )
        ax.set_title(f"{x_obj.short} vs {y_obj.short} ({better})")
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
        out[next(names)] = _png(fig, plt)

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    ax.plot([g.generation for g in state.log], [g.hypervolume for g in state.log], marker="o", label="measured front")
    optimum = [(g.generation, g.optimum["hypervolume"]) for g in state.log if g.optimum and "hypervolume" in g.optimum]
    if optimum:
        xs, ys = [g for g, _ in optimum], [hv for _, hv in optimum]
        ax.plot(xs, ys, marker="x", linestyle="--", label="predicted optimum of the space (predicted)")
        ax.legend(loc="lower right")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("generation")
    ax.set_ylabel("hypervolume (normalized, reference point 1)")
    ax.set_title(f"hypervolume of the Pareto front ({', '.join(registry.get(o).short for o in objectives)})")
    ax.grid(alpha=0.3)
    out[next(names)] = _png(fig, plt)
    return out


def _pair_front(points: list[tuple[float, float]], x_max: bool, y_max: bool) -> list[tuple[float, float]]:
    """The 2-D Pareto front of one pair, sorted by x: walking from the best x, keep each point that
    improves on the best y so far."""
    stair: list[tuple[float, float]] = []
    best = None
    for x, y in sorted(points, reverse=x_max):
        if best is None or (y > best if y_max else y < best):
            stair.append((x, y))
            best = y
    return sorted(stair)


def _png(fig: Any, plt: Any) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def predictor_plot(points: list[tuple[str, float, float]], title: str) -> bytes:
    """Predicted (out of sample) against measured latency, log-log, with the y = x line and +-10%;
    `points`: (archid, measured, predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [m for _, m, _ in points]
    predicted = [p for _, _, p in points]
    fig, ax = plt.subplots(figsize=(6, 5.5), dpi=110)
    ax.scatter(measured, predicted, s=18, alpha=0.8)
    low, high = min(measured + predicted) * 0.9, max(measured + predicted) * 1.1
    ax.plot([low, high], [low, high], color="black", linewidth=1, label="predicted = measured")
    for factor, style in ((1.1, "--"), (0.9, "--")):
        ax.plot([low, high], [low * factor, high * factor], color="grey", linestyle=style, linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured latency (s)")
    ax.set_ylabel("predicted latency (s), out of sample")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper left")
    return _png(fig, plt)


def proxy_plot(report: Any) -> bytes:
    """Each proxy of a `proxy.Report` against validation perplexity (log-log), one panel per proxy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report.proxies)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4), dpi=110, squeeze=False)
    ppl = [row["val_perplexity"] for row in report.architectures]
    for ax, name in zip(axes[0], names, strict=True):
        p = report.proxies[name]
        ax.scatter([row[name] for row in report.architectures], ppl, s=24)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(p.label)
        ax.set_ylabel("validation perplexity")
        ax.set_title(f"Spearman {p.spearman:.2f}, Kendall {p.kendall:.2f}")
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(f"{report.corpus}: {report.budget['max_steps']} steps per architecture")
    return _png(fig, plt)
