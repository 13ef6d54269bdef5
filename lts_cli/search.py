"""The Lightweight Transformer Search: an evolutionary Pareto loop over an injected evaluator (pure).

Each generation evaluates its unseen population, takes the Pareto front of everything evaluated so
far, and builds the next population from one mutation per front member (`mutations_per_parent`),
`crossovers` children of random front pairs and `random_mix` fresh samples, shuffled and cut to
`max_unseen` (archai's EvolutionParetoSearch). Architectures outside the parameter constraint are
rejected before any measurement, and an architecture already evaluated is never proposed again.

With `screen` on (the default; it needs a `Screener`: a latency model refitted after every
generation), each generation after the first proposes `screen_factor` times as many candidates, scores them all with
exact parameters and file sizes and predicted latencies, and measures only those that could join
the measured front within the model's error margin, at most `screen_measure` of what a plain
generation would measure (those adding the most predicted hypervolume), plus a small random share
for exploration. The front, its hypervolume and every record
stay measured; screened-out candidates are kept apart (`SearchState.screened`) and never proposed
again.

With a Screener and a space of at most `ENUMERABLE` architectures within the constraint, every
generation also logs the space's predicted optimum and the measured front's share of it
(whole_space.py). The `whole-space` strategy replaces the evolution after generation 1: each round
measures the `round_size` unmeasured architectures adding the most predicted hypervolume, until
none adds `min_gain` of it or `max_measurements` is reached (`SearchState.stopped` says which).

All state lives in `SearchState`, which is plain data: after every architecture the caller may
save it, and `run_search` continues from a saved state exactly where it stopped. Random draws
happen only between generations, from the RNG state saved with the population, so a resumed run
proposes the same architectures as an uninterrupted one.

An `Executor` evaluates a generation's candidates, one after another (`Sequential`, the default) or
many at once on other machines (lts_cli.distributed), and yields them as they finish. The order
they finish in never reaches the RNG: at the end of a generation its records are put in a fixed
order (by archid) before the next one is built, so with equal measurements every executor proposes
the same architectures. A candidate an executor could not evaluate is recorded as failed with
its reason (`SearchState.failed`) and never proposed again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from lts_cli import objectives as registry
from lts_cli.errors import LtsError
from lts_cli.pareto import hypervolume, pareto_front, to_minimization
from lts_cli.screening import Fitted, Policy, Screener, choose, prediction_errors, refit, screen
from lts_cli.search_config import ENUMERABLE, EVOLUTION, WHOLE_SPACE, SearchConfig
from lts_cli.search_state import Candidate, FailedCandidate, GenerationLog, Record, SearchState, rng_from, rng_state
from lts_cli.space import Arch
from lts_cli.views import JsonObject
from lts_cli.whole_space import optimum


@dataclass
class Measured:
    """What an evaluator returns for one architecture."""

    values: dict[str, float]  # at least every configured objective
    cached: bool = False
    timing_s: float = 0.0  # seconds spent in timed runs (the rest of the evaluation is overhead)
    seconds: float | None = None  # the evaluation's wall time where it ran (None: the search's clock tells)


@dataclass
class Failed:
    """What an executor returns for an architecture it could not evaluate (after its retries)."""

    reason: str


Evaluate = Callable[[Arch], Measured]
OnEvent = Callable[[str, "SearchState", dict[str, Any]], None]


class Executor(Protocol):
    """Evaluates candidates and yields (index into `archs`, result) as each finishes, in any order;
    `started(i)` is called when `archs[i]` is sent. Closing the iterator (an interrupt) abandons
    whatever is still in flight."""

    def map(self, archs: list[Arch], started: Callable[[int], None]) -> Iterator[tuple[int, Measured | Failed]]: ...


class Sequential:
    """The local executor: one architecture after another, in order, on this machine."""

    def __init__(self, evaluate: Evaluate, clock: Callable[[], float] = time.monotonic) -> None:
        self.evaluate = evaluate
        self.clock = clock

    def map(self, archs: list[Arch], started: Callable[[int], None]) -> Iterator[tuple[int, Measured | Failed]]:
        for i, arch in enumerate(archs):
            started(i)
            start = self.clock()
            measured = self.evaluate(arch)
            measured.seconds = self.clock() - start
            yield i, measured


@dataclass
class Round:
    """A whole-space round: the candidates chosen (none: draw `size` at random) and how."""

    candidates: list[Candidate]
    info: JsonObject
    size: int


class Search:
    """One search: its config, the evaluator and the state it advances."""

    def __init__(
        self,
        config: SearchConfig,
        evaluate: Evaluate | Executor,
        clock: Callable[[], float] = time.monotonic,
        screener: Screener | None = None,
    ) -> None:
        predicts = config.screen or config.strategy == WHOLE_SPACE
        if predicts and screener is None:
            raise LtsError("a screened or whole-space search needs a latency model (a Screener)")
        self.config = config
        self.space = config.space
        self.executor: Executor = evaluate if hasattr(evaluate, "map") else Sequential(evaluate, clock)
        self.clock = clock
        self.screener = screener
        self.screens = config.screen and config.strategy == EVOLUTION
        self._archs: list[Arch] | None = None

    def whole_space(self) -> list[Arch] | None:
        """Every architecture within the constraint (None: more than search_config.ENUMERABLE)."""
        if self._archs is None and self.config.enumerable():
            self._archs = self.config.whole_space()
        return self._archs

    # ---- candidates ----------------------------------------------------------------------------

    def valid(self, arch: Arch) -> bool:
        return self.config.min_params <= arch.non_embedding_params <= self.config.max_params

    def sample(self, rng: random.Random, count: int, seen: set[str], generation: int) -> list[Candidate]:
        """Up to `count` distinct, unseen, valid random architectures: drawn from the whole space
        (bounded retries), topped up from the list of valid ones when the constraint is so narrow
        that random draws rarely meet it."""
        out: dict[str, Candidate] = {}
        for _ in range(count * self.config.patience):
            if len(out) == count:
                break
            arch = self.space.sample(rng)
            if self.valid(arch) and arch.archid not in seen and arch.archid not in out:
                out[arch.archid] = Candidate(arch.to_dict(), generation)
        if len(out) < count:
            within = self.space.within(self.config.min_params, self.config.max_params)
            rest = [a for a in within if a.archid not in seen and a.archid not in out]
            for arch in rng.sample(rest, min(count - len(out), len(rest))):
                out[arch.archid] = Candidate(arch.to_dict(), generation)
        return list(out.values())

    def mutations(
        self, rng: random.Random, parents: list[Record], seen: set[str], generation: int, per_parent: int
    ) -> list[Candidate]:
        out: dict[str, Candidate] = {}
        for parent in parents:
            found = 0
            for _ in range(self.config.patience):
                if found == per_parent:
                    break
                child = self.space.mutate(Arch(**parent.arch), rng)
                if self.valid(child) and child.archid not in seen and child.archid not in out:
                    out[child.archid] = Candidate(child.to_dict(), generation, parent=parent.archid)
                    found += 1
        return list(out.values())

    def crossovers(
        self, rng: random.Random, parents: list[Record], seen: set[str], generation: int, count: int
    ) -> list[Candidate]:
        out: dict[str, Candidate] = {}
        if len(parents) < 2:
            return []
        for _ in range(count):
            p1, p2 = rng.sample(parents, 2)
            for _ in range(self.config.patience):
                child = self.space.crossover(Arch(**p1.arch), Arch(**p2.arch), rng)
                if self.valid(child) and child.archid not in seen and child.archid not in out:
                    out[child.archid] = Candidate(child.to_dict(), generation, parents=f"{p1.archid},{p2.archid}")
                    break
        return list(out.values())

    # ---- state ---------------------------------------------------------------------------------

    def start(self) -> SearchState:
        rng = random.Random(self.config.seed)
        population = self.sample(rng, self.config.init_models, set(), 1)
        assert population, "SearchConfig checks that some architecture meets the constraint"
        return SearchState(generation=1, pending=population, records=[], rng_state=rng_state(rng))

    def front(self, state: SearchState) -> list[Record]:
        """The Pareto front of everything evaluated so far, by the configured objectives."""
        return self._front_of(state.records)

    def _front_of(self, records: list[Record]) -> list[Record]:
        points = [self._point(r) for r in records]
        return [records[i] for i in pareto_front(points)]

    def _point(self, record: Record) -> tuple[float, ...]:
        objectives = self.config.objectives
        return to_minimization([record.values[o] for o in objectives], [registry.get(o).maximize for o in objectives])

    def hypervolume(self, state: SearchState) -> float:
        """Hypervolume of the front in the unit cube of normalized objectives, reference point (1, ..., 1).

        Normalization (fixed for the run, stored in the state): each objective is divided by its
        bound for the largest architecture of the search space (`objectives.bounds`); maximized
        ones count as 1 - value / bound.
        """
        assert state.bounds is not None
        points = []
        for r in state.records:
            point = []
            for name in self.config.objectives:
                value, bound = r.values[name], state.bounds[name]
                point.append(1.0 - value / bound if registry.get(name).maximize else value / bound)
            points.append(point)
        return hypervolume([points[i] for i in pareto_front(points)], [1.0] * len(self.config.objectives))

    def _bounds(self, records: list[Record]) -> dict[str, float]:
        return registry.bounds(
            self.config.objectives,
            self.space.extreme(largest=True),
            self.config.max_params,
            [(Arch(**r.arch), r.values) for r in records],
            self.config.measure,
        )

    # ---- the loop ------------------------------------------------------------------------------

    def run(self, state: SearchState | None = None, on_event: OnEvent | None = None) -> SearchState:
        """Advance `state` (a fresh one if None) to the end; `on_event` sees every step to save it."""
        state = state or self.start()
        c = self.config

        def emit(event: str, **data: Any) -> None:
            if on_event:
                on_event(event, state, data)

        while not state.finished:
            earlier = [r for r in state.records if r.generation < state.generation]
            front_before = {r.archid for r in self._front_of(earlier)}
            done = sum(1 for r in state.records if r.generation == state.generation)
            emit("generation_start", size=len(state.pending) + done)
            self._evaluate_pending(state, emit)
            this_gen = sorted(  # a fixed order, whatever order the executor finished them in
                (r for r in state.records if r.generation == state.generation), key=lambda r: r.archid
            )
            state.records = [r for r in state.records if r.generation != state.generation] + this_gen
            if state.bounds is None:
                state.bounds = self._bounds(this_gen)
            front = self.front(state)
            fitted = refit(self.screener, state.records) if self.screener is not None else "no latency model"
            entry = GenerationLog(
                generation=state.generation,
                evaluated=len(this_gen),
                cached=sum(r.cached for r in this_gen),
                pareto_size=len(front),
                hypervolume=self.hypervolume(state),
                new_on_front=[r.archid for r in front if r.archid not in front_before],
                seconds=sum(r.eval_s for r in this_gen),
                screening=None
                if state.screening is None
                else {**state.screening, "error": prediction_errors(this_gen)},
            )
            entry.optimum = self._optimum(state, fitted)
            state.log = [g for g in state.log if g.generation != state.generation] + [entry]
            plan = self._plan_round(state, front, fitted) if c.strategy == WHOLE_SPACE else None
            if isinstance(plan, str) or (c.strategy == EVOLUTION and state.generation >= c.generations):
                state.finished = True  # nothing is built after the last generation
                state.stopped = plan if isinstance(plan, str) else None
                emit("generation_done", entry=entry)
                break
            emit("generation_done", entry=entry)
            self._next_generation(state, front, fitted, plan)
            emit("generation_ready")
        emit("finished")
        return state

    def _evaluate_pending(self, state: SearchState, emit: Callable[..., None]) -> None:
        """Evaluate the generation's pending candidates with the executor, recording each as it finishes."""
        batch = list(state.pending)
        objectives = self.config.objectives
        last = self.clock()
        results = self.executor.map([Arch(**c.arch) for c in batch], lambda i: emit("arch_start", candidate=batch[i]))
        try:
            for index, outcome in results:
                now = self.clock()
                took, last = now - last, now
                state.elapsed_s += took
                candidate = batch[index]
                state.pending = [c for c in state.pending if c is not candidate]
                if isinstance(outcome, Failed):
                    failed = FailedCandidate(**asdict(candidate), reason=outcome.reason)
                    state.failed.append(failed)
                    emit("arch_failed", failed=failed)
                    continue
                missing = [o for o in objectives if o not in outcome.values]
                if missing:
                    raise LtsError(f"the evaluator returned no value for {', '.join(missing)}")
                record = Record(
                    **asdict(candidate),
                    values=dict(outcome.values),
                    cached=outcome.cached,
                    eval_s=outcome.seconds if outcome.seconds is not None else took,
                    timing_s=outcome.timing_s,
                    walltime_s=state.elapsed_s,
                )
                state.records.append(record)
                emit("arch_done", record=record)
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()  # an interrupt: the executor abandons what is in flight

    def _optimum(self, state: SearchState, fitted: Fitted) -> JsonObject:
        """The space's predicted optimum and the measured front's share of it, or why there is none."""
        archs = self.whole_space()
        if archs is None:
            return {"skipped": f"not enumerable: more than {ENUMERABLE:,} architectures within the constraint"}
        if self.screener is None or isinstance(fitted, str):
            return {"skipped": fitted}
        assert state.bounds is not None
        measured = {r.archid: r.values for r in state.records}
        others = self.screener.predict_many([a for a in archs if a.archid not in measured])
        return asdict(optimum(list(measured.values()), others, self.config.objectives, state.bounds))

    def _plan_round(self, state: SearchState, front: list[Record], fitted: Fitted) -> Round | str:
        """The whole-space strategy's next round: the `round_size` unmeasured architectures adding the
        most predicted hypervolume (optimistic within the margin; none chosen: too few measurements
        for a model, a random round), or why the search stops. Changes nothing in `state`."""
        c = self.config
        left = c.max_measurements - len(state.records) if c.max_measurements else c.round_size
        if left <= 0:
            return f"reached --max-measurements ({c.max_measurements})"
        done = {r.archid for r in state.records} | {x.archid for x in state.failed}
        archs = [a for a in self.whole_space() or [] if a.archid not in done]
        if not archs:
            return "every architecture of the space is measured"
        if isinstance(fitted, str):
            return Round([], {"measured": min(c.round_size, left), "not_screened": fitted}, min(c.round_size, left))
        assert self.screener is not None and state.bounds is not None
        predictions = self.screener.predict_many(archs)
        margins = {name: stats["margin"] for name, stats in fitted.items()}
        fronts = [r.values for r in front]
        enough = c.min_gain * self.hypervolume(state)
        chosen = choose(predictions, fronts, c.objectives, state.bounds, margins, min(c.round_size, left))
        chosen = [(i, gain) for i, gain in chosen if gain >= enough]
        if not chosen:
            return f"no unmeasured architecture is predicted to add --min-gain ({c.min_gain:g} x the hypervolume)"
        nxt = state.generation + 1
        picked = [Candidate(archs[i].to_dict(), nxt, predicted=predictions[i]) for i, _ in chosen]
        info = {"predicted": len(archs), "measured": len(picked), "models": fitted, "gains": [g for _, g in chosen]}
        return Round(picked, info, len(picked))

    def _next_generation(self, state: SearchState, front: list[Record], fitted: Fitted, plan: Round | None) -> None:
        rng = rng_from(state.rng_state)
        c = self.config
        nxt = state.generation + 1
        if plan is not None:  # whole-space: planned before the generation was logged
            seen = {r.archid for r in state.records} | {x.archid for x in state.failed}
            state.pending = plan.candidates or self.sample(rng, plan.size, seen, nxt)
            state.screening = plan.info
            state.generation, state.rng_state = nxt, rng_state(rng)
            return
        factor = c.screen_factor if self.screens else 1
        seen = {r.archid for r in state.records} | {x.archid for x in state.screened + state.failed}
        crossed = self.crossovers(rng, front, seen, nxt, c.crossovers * factor)
        mutated = self.mutations(rng, front, seen | {x.archid for x in crossed}, nxt, c.mutations_per_parent * factor)
        fresh = self.sample(rng, c.random_mix * factor, seen | {x.archid for x in crossed + mutated}, nxt)
        population = crossed + mutated + fresh
        rng.shuffle(population)
        population = population[: c.max_unseen * factor]
        state.pending, state.screening = population, None
        if self.screens:
            assert self.screener is not None
            policy = Policy(c.objectives, c.screen_factor, c.screen_measure, c.screen_explore)
            screen(policy, self.screener, fitted, state, front, population, rng)
        state.generation = nxt
        state.rng_state = rng_state(rng)
