"""The Lightweight Transformer Search: an evolutionary Pareto loop over an injected evaluator (pure).

Each generation evaluates its unseen population, takes the Pareto front of everything evaluated so
far, and builds the next population from one mutation per front member (`mutations_per_parent`),
`crossovers` children of random front pairs and `random_mix` fresh samples, shuffled and cut to
`max_unseen` (archai's EvolutionParetoSearch). Architectures outside the parameter constraint are
rejected before any measurement, and an architecture already evaluated is never proposed again.

With `screen` on (and a `Screener`: a latency model refitted after every generation), each
generation after the first proposes `screen_factor` times as many candidates, scores them all with
exact parameters and file sizes and predicted latencies, and measures only those that could join
the measured front within the model's error margin, at most `screen_measure` of what a plain
generation would measure (those adding the most predicted hypervolume), plus a small random share
for exploration. The front, its hypervolume and every record
stay measured; screened-out candidates are kept apart (`SearchState.screened`) and never proposed
again.

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
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from lts_cli import objectives as registry
from lts_cli.config import at_least, positive
from lts_cli.errors import ConfigError, LtsError, invalid
from lts_cli.pareto import hypervolume, pareto_front, to_minimization
from lts_cli.screening import Policy, Screener, prediction_errors, screen
from lts_cli.search_state import Candidate, FailedCandidate, GenerationLog, Record, SearchState, rng_from, rng_state
from lts_cli.settings import MeasureSettings
from lts_cli.space import Arch, SearchSpace


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


def _search_measure() -> MeasureSettings:
    # The search stops timing an architecture once its mean is known to +-3% (95% CI), after at
    # least 5 and at most 25 runs; benchmarks/bench_search.py measures how well that repeats.
    return MeasureSettings(adaptive=True)


@dataclass(frozen=True)
class SearchConfig:
    """The Lightweight Transformer Search; defaults are the published ones (configs/search.yaml)."""

    generations: int = 10
    init_models: int = 10
    mutations_per_parent: int = 1
    crossovers: int = 5
    random_mix: int = 5
    max_unseen: int = 100
    seed: int = 1
    min_params: float = 1e6
    max_params: float = 1e9
    patience: int = 20
    objectives: tuple[str, ...] = registry.DEFAULT
    space: SearchSpace = field(default_factory=SearchSpace)
    measure: MeasureSettings = field(default_factory=_search_measure)
    screen: bool = False  # propose more, predict latency, measure only what could reach the front
    screen_factor: int = 10  # proposals per generation, as a multiple of a plain generation's
    screen_measure: float = 0.2  # measure at most this share of what a plain generation would
    screen_explore: float = 0.1  # also measure this share (of those chosen) at random, for exploration

    def __post_init__(self) -> None:
        at_least(self, 1, "generations", "init_models", "max_unseen", "patience")
        at_least(self, 0, "mutations_per_parent", "crossovers", "random_mix", "min_params")
        positive(self, "max_params")
        if self.generations > 1 and self.mutations_per_parent + self.crossovers + self.random_mix == 0:
            raise ConfigError(
                ["mutations_per_parent", "crossovers", "random_mix"],
                "{0}, {1} and {2} are all 0: generations after the first would be empty",
            )
        if self.min_params > self.max_params:
            raise ConfigError(
                ["min_params", "max_params"],
                f"{{0}} ({self.min_params:g}) is larger than {{1}} ({self.max_params:g})",
            )
        registry.check(self.objectives)
        at_least(self, 2, "screen_factor")
        if not 0 <= self.screen_explore <= 1:
            raise invalid("screen_explore", "must be between 0 and 1", self.screen_explore)
        if not 0 < self.screen_measure <= 1:
            raise invalid("screen_measure", "must be greater than 0 and at most 1", self.screen_measure)
        unpredictable = [
            o for o in self.objectives if registry.get(o).kind == "measured" and o not in registry.PREDICTABLE
        ]
        if self.screen and unpredictable:
            raise ConfigError(
                ["screen", "objectives"],
                f"{{0}} predicts latencies only, and {{1}} has {', '.join(unpredictable)}: drop it, or screening",
            )
        largest = self.space.extreme(largest=True)
        for name in self.objectives:
            if registry.get(name).unavailable(largest, self.measure):
                raise ConfigError(
                    ["measure.decode_context", "space.n_positions"],
                    f"{{0}} ({self.measure.decode_context}) leaves no room for a new token within {{1}} "
                    f"({self.space.n_positions}), which {name} needs",
                )
        if self.measure.seq_len > self.space.n_positions:
            raise ConfigError(
                ["measure.seq_len", "space.n_positions"],
                f"{{0}} ({self.measure.seq_len}) exceeds {{1}} ({self.space.n_positions})",
            )
        if not self.space.feasible(self.min_params, self.max_params):
            lo, hi = self.space.params_range()
            raise ConfigError(
                ["min_params", "max_params"],
                f"no architecture of the search space has between {self.min_params:g} and {self.max_params:g} "
                f"non-embedding parameters (the space spans {lo:,} to {hi:,}); widen {{0}}/{{1}}",
            )


class Search:
    """One search: its config, the evaluator and the state it advances."""

    def __init__(
        self,
        config: SearchConfig,
        evaluate: Evaluate | Executor,
        clock: Callable[[], float] = time.monotonic,
        screener: Screener | None = None,
    ) -> None:
        if config.screen and screener is None:
            raise LtsError("a screened search needs a latency model (a Screener)")
        self.config = config
        self.space = config.space
        self.executor: Executor = evaluate if hasattr(evaluate, "map") else Sequential(evaluate, clock)
        self.clock = clock
        self.screener = screener if config.screen else None

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
            state.log = [g for g in state.log if g.generation != state.generation] + [entry]
            if state.generation >= c.generations:
                state.finished = True  # nothing is built after the last generation
                emit("generation_done", entry=entry)
                break
            emit("generation_done", entry=entry)
            self._next_generation(state, front)
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

    def _next_generation(self, state: SearchState, front: list[Record]) -> None:
        rng = rng_from(state.rng_state)
        c = self.config
        nxt = state.generation + 1
        factor = c.screen_factor if self.screener else 1
        seen = {r.archid for r in state.records} | {x.archid for x in state.screened + state.failed}
        crossed = self.crossovers(rng, front, seen, nxt, c.crossovers * factor)
        mutated = self.mutations(rng, front, seen | {x.archid for x in crossed}, nxt, c.mutations_per_parent * factor)
        fresh = self.sample(rng, c.random_mix * factor, seen | {x.archid for x in crossed + mutated}, nxt)
        population = crossed + mutated + fresh
        rng.shuffle(population)
        population = population[: c.max_unseen * factor]
        state.pending, state.screening = population, None
        if self.screener is not None:
            policy = Policy(c.objectives, c.screen_factor, c.screen_measure, c.screen_explore)
            screen(policy, self.screener, state, front, population, rng)
        state.generation = nxt
        state.rng_state = rng_state(rng)
