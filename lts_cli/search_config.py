"""A search's settings: the published LiteTransformerSearch defaults, the screen and the strategy (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lts_cli import objectives as registry
from lts_cli.config import at_least, positive
from lts_cli.errors import ConfigError, invalid
from lts_cli.settings import MeasureSettings
from lts_cli.space import Arch, SearchSpace

EVOLUTION, WHOLE_SPACE = "evolution", "whole-space"
ENUMERABLE = 200_000  # the most architectures a search predicts one by one (about 5 s per 5,000 here)


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
    strategy: Literal["evolution", "whole-space"] = "evolution"  # whole-space: predict all, measure the best
    screen: bool = True  # evolution: propose more, predict latency, measure only what could reach the front
    screen_factor: int = 10  # proposals per generation, as a multiple of a plain generation's
    screen_measure: float = 0.4  # measure at most this share of what a plain generation would
    screen_explore: float = 0.1  # also measure this share (of those chosen) at random, for exploration
    round_size: int = 10  # whole-space: architectures measured per round
    min_gain: float = 0.001  # whole-space: stop once the best predicted gain is below this share of the hypervolume
    max_measurements: int = 0  # whole-space: stop after this many measured architectures (0: no limit)

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
        at_least(self, 1, "round_size")
        at_least(self, 0, "max_measurements")
        if not 0 <= self.min_gain < 1:
            raise invalid("min_gain", "must be at least 0 and less than 1", self.min_gain)
        predicted = "strategy" if self.strategy == WHOLE_SPACE else "screen" if self.screen else None
        if predicted and unpredictable:
            fix = "screening (--no-screen)" if predicted == "screen" else "the evolution strategy"
            raise ConfigError(
                [predicted, "objectives"],
                f"{{0}} predicts latencies only, and {{1}} has {', '.join(unpredictable)}: drop it, or use {fix}",
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
        if self.strategy == WHOLE_SPACE and not self.enumerable():
            raise ConfigError(
                ["strategy", "min_params", "max_params"],
                f"{{0}} {WHOLE_SPACE} predicts every architecture, and this space has more than {ENUMERABLE:,} "
                "within {1}..{2}: narrow the space or the parameter range, or use the evolution strategy",
            )

    def enumerable(self) -> bool:
        """Whether every architecture within the constraint can be predicted (at most ENUMERABLE)."""
        return self.space.count_within(self.min_params, self.max_params, stop=ENUMERABLE + 1) <= ENUMERABLE

    def whole_space(self) -> list[Arch]:
        """Every architecture within the parameter constraint, in order."""
        return self.space.within(self.min_params, self.max_params)
