"""A screened search's policy (pure): which predicted candidates are worth measuring, those whose
optimistic prediction could join the measured Pareto front, chosen greedily by the hypervolume each
adds to the front and to those chosen before it, and how far the predictions were from the measurements that followed.

A measured objective is predicted with a relative error margin; the optimistic point moves each
predicted value by its margin towards better. A candidate whose optimistic point is dominated by a
measured front member cannot be on the front (within the model's error), so it is not measured.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from lts_cli import objectives as registry
from lts_cli.errors import TooFewMeasurements
from lts_cli.pareto import greedy
from lts_cli.rankstats import errors
from lts_cli.search_state import Candidate, Record, SearchState
from lts_cli.space import Arch

Values = Mapping[str, float]


class Screener(Protocol):
    """Predicts objective values so a screened search can choose what to measure."""

    def fit(self, records: list[Record]) -> dict[str, dict[str, float]]:
        """Refit from everything measured so far; per predicted objective: n, cv_median, cv_p90, margin."""
        ...

    def predict(self, arch: Arch) -> dict[str, float]:
        """Every chosen objective: exact ones computed, measured ones predicted."""
        ...

    def predict_many(self, archs: Sequence[Arch]) -> list[dict[str, float]]:
        """`predict` for each (faster: exact values remembered, latencies as one product)."""
        ...


Fitted = dict[str, dict[str, float]] | str  # the models' summaries, or why there are none (too few measurements)


def refit(screener: Screener, records: list[Record]) -> Fitted:
    """The screener refitted on what is measured so far, or why it could not be."""
    try:
        return screener.fit(records)
    except TooFewMeasurements as exc:
        return str(exc)


def point(values: Values, objectives: Sequence[str], bounds: Mapping[str, float]) -> tuple[float, ...]:
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


def choose(
    candidates: Sequence[Values],
    front: Sequence[Values],
    objectives: Sequence[str],
    bounds: Mapping[str, float],
    margins: Mapping[str, float],
    most: int,
) -> list[tuple[int, float]]:
    """Up to `most` (index, predicted gain) of the candidates, each adding the most hypervolume at its
    optimistic point (within the model's margin) to the measured `front` and to those chosen before
    it (`pareto.greedy`): a candidate that only repeats the gain of one already chosen is left out.
    The screen and the whole-space strategy both choose this way."""
    reference = [1.0] * len(objectives)
    base = [point(v, objectives, bounds) for v in front]
    points = [point(optimistic(v, margins), objectives, bounds) for v in candidates]
    return greedy(points, base, reference, most)


@dataclass(frozen=True)
class Policy:
    """A screened search's settings (SearchConfig's screen_*): proposals per generation as a multiple
    of a plain one's, the share of a plain generation measured at most, the random share explored."""

    objectives: tuple[str, ...]
    factor: int
    measure: float
    explore: float


def screen(
    policy: Policy,
    screener: Screener,
    models: Fitted,
    state: SearchState,
    front: list[Record],
    population: list[Candidate],
    rng: random.Random,
) -> None:
    """Keep for measuring what could join the front, at most `policy.measure` of what a plain
    generation would measure (the most promising by predicted hypervolume), and a random
    exploration share; the rest is screened out with its prediction."""
    assert state.bounds is not None
    plain = math.ceil(len(population) / policy.factor)
    most = max(1, round(plain * policy.measure))
    if isinstance(models, str):  # not screened: a plain generation's worth, as a plain search would
        state.pending = population[:plain]
        state.screening = {"proposed": len(population), "measured": plain, "not_screened": models}
        return
    predictions = screener.predict_many([Arch(**c.arch) for c in population])
    for candidate, predicted in zip(population, predictions, strict=True):
        candidate.predicted = predicted
    margins = {name: stats["margin"] for name, stats in models.items()}
    fronts = [r.values for r in front]
    chosen = {i for i, _ in choose(predictions, fronts, policy.objectives, state.bounds, margins, most)}
    rest = [i for i in range(len(population)) if i not in chosen]
    explore = sorted(rng.sample(rest, min(len(rest), math.ceil(policy.explore * max(len(chosen), 1)))))
    keep = chosen | set(explore)
    state.pending = [x for i, x in enumerate(population) if i in keep]
    state.screened += [x for i, x in enumerate(population) if i not in keep]
    state.screening = {
        "proposed": len(population),
        "predicted": len(population),
        "measured": len(state.pending),
        "explored": len(explore),
        "models": models,
    }


def prediction_errors(records: list[Record]) -> dict[str, dict[str, float]]:
    """Per predicted objective: the model's error on these records, predicted before they were measured."""
    out: dict[str, dict[str, float]] = {}
    names = {n for r in records if r.predicted for n in r.predicted if registry.get(n).kind == "measured"}
    for name in sorted(names):
        pairs = [(r.predicted[name], r.values[name]) for r in records if r.predicted and name in r.predicted]
        if pairs:
            e = errors([p for p, _ in pairs], [m for _, m in pairs])
            out[name] = {"n": e.n, "median": e.median, "p90": e.p90}
    return out
