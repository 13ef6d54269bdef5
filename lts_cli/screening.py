"""Which predicted candidates are worth measuring (pure): those whose optimistic prediction could join
the measured Pareto front, best first by the hypervolume they would add.

A measured objective is predicted with a relative error margin; the optimistic point moves each
predicted value by its margin towards better. A candidate whose optimistic point is dominated by a
measured front member cannot be on the front (within the model's error), so it is not measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lts_cli import objectives as registry
from lts_cli.pareto import dominates, hypervolume, pareto_front

Values = Mapping[str, float]


def _point(values: Values, objectives: Sequence[str], bounds: Mapping[str, float]) -> tuple[float, ...]:
    """Normalized and minimized, as the search's hypervolume sees it."""
    out = []
    for name in objectives:
        v = values[name] / bounds[name]
        out.append(1.0 - v if registry.get(name).maximize else v)
    return tuple(out)


def optimistic(values: Values, margins: Mapping[str, float]) -> dict[str, float]:
    """Each predicted value moved by its margin towards better (exact values unchanged)."""
    out = dict(values)
    for name, margin in margins.items():
        if name in out:
            better = 1 + margin if registry.get(name).maximize else 1 - margin
            out[name] = out[name] * better
    return out


def select(
    candidates: Sequence[Values],
    front: Sequence[Values],
    objectives: Sequence[str],
    bounds: Mapping[str, float],
    margins: Mapping[str, float],
    most: int,
) -> list[int]:
    """Indices of the candidates to measure: optimistically not dominated by the measured `front`,
    at most `most`, those adding the most predicted hypervolume first."""
    front_points = [_point(v, objectives, bounds) for v in front]
    hopeful = [
        i
        for i, values in enumerate(candidates)
        if not any(dominates(f, _point(optimistic(values, margins), objectives, bounds)) for f in front_points)
    ]
    if len(hopeful) <= most:
        return hopeful
    reference = [1.0] * len(objectives)
    base = hypervolume([front_points[i] for i in pareto_front(front_points)], reference)

    def gain(i: int) -> float:
        points = [*front_points, _point(candidates[i], objectives, bounds)]
        return hypervolume([points[j] for j in pareto_front(points)], reference) - base

    return sorted(hopeful, key=lambda i: (-gain(i), i))[:most]
