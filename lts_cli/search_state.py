"""A search's state as plain data: candidates, records, the generation log and the random generator's
state, saved after every architecture so that a search continues exactly where it stopped (pure)."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

from lts_cli.errors import LtsError
from lts_cli.space import Arch
from lts_cli.views import JsonObject


@dataclass
class Candidate:
    arch: dict[str, int]
    generation: int
    parent: str | None = None  # mutations: the front member it came from
    parents: str | None = None  # crossovers: "archid1,archid2"
    predicted: dict[str, float] | None = None  # a screened search's prediction, made before measuring

    @property
    def archid(self) -> str:
        return Arch(**self.arch).archid


@dataclass
class Record(Candidate):
    values: dict[str, float] = field(default_factory=dict)
    cached: bool = False
    eval_s: float = 0.0
    timing_s: float = 0.0
    walltime_s: float = 0.0  # search wall time when this evaluation finished


@dataclass
class FailedCandidate(Candidate):
    reason: str = ""


@dataclass
class GenerationLog:
    generation: int
    evaluated: int
    cached: int
    pareto_size: int
    hypervolume: float
    new_on_front: list[str]
    seconds: float
    screening: JsonObject | None = None  # proposed, measured, the model and its error on this generation
    optimum: JsonObject | None = None  # the space's predicted optimum (whole_space.Optimum), or why not


@dataclass
class SearchState:
    generation: int  # the generation being evaluated (1-based)
    pending: list[Candidate]  # its candidates not yet evaluated, in order
    records: list[Record]
    rng_state: list[Any]
    elapsed_s: float = 0.0
    bounds: dict[str, float] | None = None  # hypervolume normalization, fixed after generation 1
    log: list[GenerationLog] = field(default_factory=list)
    finished: bool = False
    screened: list[Candidate] = field(default_factory=list)  # predicted, not measured
    screening: JsonObject | None = None  # how the pending generation was chosen
    failed: list[FailedCandidate] = field(default_factory=list)  # could not be evaluated, with the reason
    machines: JsonObject | None = None  # where it measures: {"fingerprints": [...], "target": label or None}
    stopped: str | None = None  # why a whole-space search stopped

    def to_dict(self) -> JsonObject:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: JsonObject, source: str = "state.json") -> SearchState:
        """A saved state, every field checked for its type (an LtsError names what is wrong)."""
        from lts_cli.config import from_mapping

        def each(kind: type[Any], key: str) -> list[Any]:
            items = data.get(key, [])
            if not isinstance(items, list):
                raise LtsError(f"{source}: {key} must be a list")
            return [from_mapping(kind, item, f"{source}: {key}[{i}]") for i, item in enumerate(items)]

        if not isinstance(data, dict):
            raise LtsError(f"{source} is not a JSON object")
        lists = ("pending", "records", "log", "screened", "failed")
        state = from_mapping(cls, {**{k: v for k, v in data.items() if k not in lists}, "pending": [], "records": []},
                             source)  # fmt: skip
        state.pending, state.records = each(Candidate, "pending"), each(Record, "records")
        state.log, state.screened, state.failed = (
            each(GenerationLog, "log"),
            each(Candidate, "screened"),
            each(FailedCandidate, "failed"),
        )
        return state


def rng_from(state: list[Any]) -> random.Random:
    rng = random.Random()
    version, internal, gauss = state
    rng.setstate((version, tuple(internal), gauss))
    return rng


def rng_state(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]
