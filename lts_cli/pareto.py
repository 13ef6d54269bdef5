"""Dominance, Pareto fronts, non-dominated sorting and hypervolume, all for minimization (pure).

A maximized objective is handled by its sign (`to_minimization`), never by special cases.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections.abc import Sequence

import numpy as np

Point = Sequence[float]


def to_minimization(values: Sequence[float], maximize: Sequence[bool]) -> tuple[float, ...]:
    """Negate the maximized objectives so that smaller is better everywhere."""
    return tuple(-v if m else v for v, m in zip(values, maximize, strict=True))


def dominates(a: Point, b: Point) -> bool:
    """`a` is no worse than `b` in every objective and strictly better in at least one."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def pareto_front(points: Sequence[Point]) -> list[int]:
    """Indices of the non-dominated points, in input order. Duplicates do not dominate each other.

    Each point that is still a candidate removes every point it dominates (one vectorized pass per
    survivor): what a removed point dominates, the point that removed it dominates too."""
    if len(points) < 2:
        return list(range(len(points)))
    p = np.asarray(points, dtype=float)
    keep = np.ones(len(p), dtype=bool)
    for i in range(len(p)):
        if keep[i]:
            keep &= ~(np.all(p[i] <= p, axis=1) & np.any(p[i] < p, axis=1))
    return [int(i) for i in np.flatnonzero(keep)]


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
    if len(reference) == 3:
        return _hv3(inside, tuple(reference))
    return _hv(inside, tuple(reference))


def _hv3(points: list[tuple[float, ...]], ref: tuple[float, ...]) -> float:
    """Three objectives in O(n log n) (plus list inserts): sweep the third from best to worst, keeping
    the 2-D staircase of the first two (x ascending, y descending) and its area up to date; each
    new point adds the part of its rectangle the staircase did not cover yet."""
    xs: list[float] = []
    ys: list[float] = []
    area = volume = 0.0
    ordered = sorted(points, key=lambda p: p[2])
    for k, (x, y, z) in enumerate(ordered):
        i = bisect_right(xs, x)
        if not (i > 0 and ys[i - 1] <= y):  # not covered by a staircase point at or left of x
            j = i
            while j < len(xs) and ys[j] >= y:
                j += 1
            # the new rectangle's uncovered part: between x and the first kept point right of it,
            # under the staircase height h (stepping down at each removed point) and above y
            h = ys[i - 1] if i > 0 else ref[1]
            left = x
            for m in range(i, j):
                area += (xs[m] - left) * (h - y)
                left, h = xs[m], ys[m]
            area += ((xs[j] if j < len(xs) else ref[0]) - left) * (h - y)
            xs[i:j], ys[i:j] = [x], [y]
        upper = ordered[k + 1][2] if k + 1 < len(ordered) else ref[2]
        volume += (upper - z) * area
    return volume


def _hv(points: list[tuple[float, ...]], ref: tuple[float, ...]) -> float:
    if not points:
        return 0.0
    if len(ref) == 1:
        return ref[0] - min(p[0] for p in points)
    if len(ref) == 2:  # a staircase: sweep the first objective, each step as deep as the best second so far
        volume, best = 0.0, ref[1]
        ordered = sorted(points)
        for k, (x, y) in enumerate(ordered):
            best = min(best, y)
            upper = ordered[k + 1][0] if k + 1 < len(ordered) else ref[0]
            volume += (upper - x) * (ref[1] - best)
        return volume
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


def contribution(p: Point, others: Sequence[Point], reference: Point) -> float:
    """The hypervolume `p` adds to `others`: its box up to the reference less the part of it that
    `others` already dominate."""
    if any(x >= r for x, r in zip(p, reference, strict=True)):
        return 0.0
    box = math.prod(r - x for x, r in zip(p, reference, strict=True))
    clipped = [tuple(max(a, b) for a, b in zip(q, p, strict=True)) for q in others]
    if any(c == tuple(p) for c in clipped):  # dominated (or equalled) by one of them
        return 0.0
    inside = [c for c in clipped if all(x < r for x, r in zip(c, reference, strict=True))]
    return box - hypervolume([inside[i] for i in pareto_front(inside)], reference)


def greedy(points: Sequence[Point], base: Sequence[Point], reference: Point, most: int) -> list[tuple[int, float]]:
    """Up to `most` (index, gain) of `points`, each adding the most hypervolume to `base` plus those
    chosen before it, so that a choice is not `most` near-copies of one gain; points adding nothing
    are left out.

    Lazy: a point's gain only shrinks as the chosen set grows, so it is recomputed only when it
    reaches the top of the queue."""
    chosen_points = [base[i] for i in pareto_front(base)]
    queue = []
    for i, p in enumerate(points):
        gain = contribution(p, chosen_points, reference)
        if gain > 0:
            queue.append((-gain, i))
    heapq.heapify(queue)
    chosen: list[tuple[int, float]] = []
    while queue and len(chosen) < most:
        _, i = heapq.heappop(queue)
        gain = contribution(points[i], chosen_points, reference)
        if gain <= 0:
            continue
        if queue and gain < -queue[0][0]:
            heapq.heappush(queue, (-gain, i))  # stale: another may add more now
            continue
        chosen.append((i, gain))
        chosen_points.append(points[i])
    return chosen
