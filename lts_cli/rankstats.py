"""Statistics (pure Python): Spearman's rho and Kendall's tau-b with ties, a seeded bootstrap
confidence interval, the overlap of two top-k sets, and the one definition of a prediction's error
(median and 90th percentile of the absolute relative errors)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Statistic = Callable[[Sequence[float], Sequence[float]], float]


@dataclass(frozen=True)
class Errors:
    """How far predictions were from measurements: absolute relative errors, their median and 90th
    percentile (linear interpolation between ranks, numpy's default)."""

    n: int
    median: float
    p90: float


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def errors(predicted: Sequence[float], measured: Sequence[float]) -> Errors:
    """The absolute relative errors of `predicted` against `measured` (measurements of 0 left out)."""
    rel = [abs(p - m) / m for p, m in zip(predicted, measured, strict=True) if m]
    return Errors(len(rel), percentile(rel, 50), percentile(rel, 90))


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing the average of their positions."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (Pearson's on average ranks, so ties are handled); nan when one side is constant."""
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    sa = math.sqrt(sum((x - ma) ** 2 for x in ra))
    sb = math.sqrt(sum((y - mb) ** 2 for y in rb))
    return cov / (sa * sb) if sa > 0 and sb > 0 else float("nan")


def kendall(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b: (concordant - discordant) / sqrt((pairs - ties in a)(pairs - ties in b))."""
    n = len(a)
    concordant = discordant = tied_a = tied_b = 0
    for i in range(n):
        for j in range(i + 1, n):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0:
                tied_a += 1
            if db == 0:
                tied_b += 1
            if da == 0 or db == 0:
                continue
            if (da > 0) == (db > 0):
                concordant += 1
            else:
                discordant += 1
    pairs = n * (n - 1) // 2
    denominator = math.sqrt((pairs - tied_a) * (pairs - tied_b))
    return (concordant - discordant) / denominator if denominator > 0 else float("nan")


def bootstrap(
    statistic: Statistic, a: Sequence[float], b: Sequence[float], resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """The 95% percentile interval of `statistic` over pairs resampled with replacement (seeded);
    resamples on which it is undefined (one side constant) are left out."""
    rng = random.Random(seed)
    n = len(a)
    values = []
    for _ in range(resamples):
        picks = [rng.randrange(n) for _ in range(n)]
        value = statistic([a[i] for i in picks], [b[i] for i in picks])
        if not math.isnan(value):
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    values.sort()
    return values[int(0.025 * (len(values) - 1))], values[math.ceil(0.975 * (len(values) - 1))]


def top_overlap(a: Sequence[float], b: Sequence[float], share: float = 0.25) -> tuple[int, int]:
    """Of the `share` of items with the largest `a`, how many are among the same number with the
    largest `b`: (overlap, k). Ties at the cut are broken by position."""
    k = max(1, math.ceil(share * len(a)))
    best_a = set(sorted(range(len(a)), key=lambda i: (-a[i], i))[:k])
    best_b = set(sorted(range(len(b)), key=lambda i: (-b[i], i))[:k])
    return len(best_a & best_b), k
