"""The whole space, predicted (pure): the best front a space allows as the latency model sees it, and
the whole-space strategy's choice of what to measure next.

Every architecture within the constraint is scored: measured values where measured, otherwise exact
parameter counts and file sizes with predicted latencies. The front of that union is the *predicted
optimum*; since the measured front is part of the union, its hypervolume is at most the optimum's,
and their ratio says how far a search is from the best the space allows (as far as the model is right).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lts_cli.pareto import hypervolume, pareto_front
from lts_cli.screening import Values, point


@dataclass(frozen=True)
class Optimum:
    """The predicted optimum of a space: its hypervolume, the measured front's share of it, and how
    many of its front members are predicted only."""

    hypervolume: float
    share: float
    front: int
    predicted: int


def optimum(
    measured: Sequence[Values],
    predicted: Sequence[Values],
    objectives: Sequence[str],
    bounds: Mapping[str, float],
) -> Optimum:
    """The front of the measured and the predicted architectures together, and the measured front's
    share of its hypervolume (within 0..1: the measured points are part of the union)."""
    reference = [1.0] * len(objectives)
    mine = [point(v, objectives, bounds) for v in measured]
    theirs = [point(v, objectives, bounds) for v in predicted]
    union = mine + theirs
    front = pareto_front(union)
    best = hypervolume([union[i] for i in front], reference)
    reached = hypervolume([mine[i] for i in pareto_front(mine)], reference)
    share = reached / best if best > 0 else 1.0
    return Optimum(best, share, len(front), sum(1 for i in front if i >= len(mine)))
