"""Dominance, Pareto fronts, non-dominated sorting and hypervolume, all for minimization (pure).

A maximized objective is handled by its sign (`to_minimization`), never by special cases.
"""

from __future__ import annotations

from collections.abc import Sequence

Point = Sequence[float]


def to_minimization(values: Sequence[float], maximize: Sequence[bool]) -> tuple[float, ...]:
    """Negate the maximized objectives so that smaller is better everywhere."""
    return tuple(-v if m else v for v, m in zip(values, maximize, strict=True))


def dominates(a: Point, b: Point) -> bool:
    """`a` is no worse than `b` in every objective and strictly better in at least one."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def pareto_front(points: Sequence[Point]) -> list[int]:
    """Indices of the non-dominated points, in input order. Duplicates do not dominate each other."""
    return [i for i, p in enumerate(points) if not any(dominates(q, p) for j, q in enumerate(points) if j != i)]


def non_dominated_sort(points: Sequence[Point]) -> list[list[int]]:
    """Successive fronts: front 0 is the Pareto front, front 1 the front once front 0 is removed, ..."""
    remaining = list(range(len(points)))
    fronts: list[list[int]] = []
    while remaining:
        front = [i for i in remaining if not any(dominates(points[j], points[i]) for j in remaining if j != i)]
        fronts.append(front)
        remaining = [i for i in remaining if i not in front]
    return fronts


def hypervolume(points: Sequence[Point], reference: Point) -> float:
    """Volume dominated by `points` and bounded by `reference` (minimization; exact, any dimension).

    Points are clipped to the reference box; a point not better than the reference in every
    objective adds nothing. Slicing along the last objective reduces d dimensions to d-1; fine for
    the few hundred points and three objectives of a search.
    """
    inside = [tuple(p) for p in points if all(x < r for x, r in zip(p, reference, strict=True))]
    return _hv(inside, tuple(reference))


def _hv(points: list[tuple[float, ...]], ref: tuple[float, ...]) -> float:
    if not points:
        return 0.0
    if len(ref) == 1:
        return ref[0] - min(p[0] for p in points)
    # Sweep the last objective from best to worst; between consecutive levels, the dominated slice
    # is the (d-1)-dimensional hypervolume of every point seen so far.
    ordered = sorted(points, key=lambda p: p[-1])
    volume = 0.0
    for k, p in enumerate(ordered):
        upper = ordered[k + 1][-1] if k + 1 < len(ordered) else ref[-1]
        depth = upper - p[-1]
        if depth > 0:
            front = [q[:-1] for q in ordered[: k + 1]]
            volume += depth * _hv(front, ref[:-1])
    return volume
