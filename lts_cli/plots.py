"""PNG plots of a search: params vs each cost objective (front highlighted), hypervolume per generation."""

from __future__ import annotations

import io
from typing import Any

from lts_cli.config import OBJECTIVES
from lts_cli.search import Search, SearchState

_LABELS = {
    "non_embedding_params": "non-embedding parameters (millions)",
    "onnx_latency": "ONNX latency (s, median)",
    "onnx_memory": "ONNX memory (MiB, file size)",
    "peak_rss": "peak RSS while running (MiB)",
}


def write_plots(search: Search, state: SearchState) -> dict[str, bytes]:
    """File name -> PNG bytes; matplotlib is imported here only (Agg backend, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    out: dict[str, bytes] = {}
    objectives = search.config.objectives
    front_ids = {r.archid for r in search.front(state)}
    x_name = "non_embedding_params" if "non_embedding_params" in objectives else objectives[0]
    generations = [r.generation for r in state.records]
    for y_name in (o for o in objectives if o != x_name):
        fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
        xs = [_scaled(x_name, r.values[x_name]) for r in state.records]
        ys = [r.values[y_name] for r in state.records]
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
        pair = sorted(zip(xs, ys, strict=True))[:: -1 if OBJECTIVES[x_name][0] else 1]
        stair, best = [], float("inf")
        for x, y in pair:  # the 2-D front of this pair: best y so far, walking from the best x
            if y < best:
                stair.append((x, y))
                best = y
        stair.sort()
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
        ax.set_xlabel(_LABELS[x_name])
        ax.set_ylabel(_LABELS[y_name])
        better = "higher" if OBJECTIVES[x_name][0] else "lower"
        ax.set_title(f"{_short(x_name)} vs {_short(y_name)} ({better} x and lower y are better)")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
        out[f"pareto_{_short(x_name)}_vs_{_short(y_name)}.png"] = _png(fig, plt)

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    ax.plot([g.generation for g in state.log], [g.hypervolume for g in state.log], marker="o")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("generation")
    ax.set_ylabel("hypervolume (normalized, reference point 1)")
    ax.set_title("hypervolume of the Pareto front")
    ax.grid(alpha=0.3)
    out["hypervolume.png"] = _png(fig, plt)
    return out


def _short(name: str) -> str:
    return {"non_embedding_params": "params", "onnx_latency": "latency", "onnx_memory": "memory"}.get(name, name)


def _scaled(name: str, value: float) -> float:
    return value / 1e6 if name == "non_embedding_params" else value


def _png(fig: Any, plt: Any) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
