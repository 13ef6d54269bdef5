"""The search loop with a cheap deterministic fake evaluator: the published procedure, resume, constraints."""

from __future__ import annotations

import json
import zlib

import pytest

from lts_cli.errors import LtsError
from lts_cli.search import Measured, Search, SearchState
from lts_cli.search_config import SearchConfig
from lts_cli.space import Arch, SearchSpace, forward_flops


class FakeEvaluator:
    """Latency ~ FLOPs with a deterministic per-arch wobble; memory = 4 bytes x unique params."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, arch: Arch) -> Measured:
        self.calls.append(arch.archid)
        wobble = 1 + (zlib.crc32(arch.archid.encode()) % 1000) / 5000
        return Measured(
            {
                "non_embedding_params": float(arch.non_embedding_params),
                "onnx_latency": forward_flops(arch, 1024) / 1e11 * wobble,
                "onnx_memory": 4 * arch.unique_params / 2**20,
                "peak_rss": 4 * arch.unique_params / 2**20 * 1.5,
            },
            timing_s=0.01,
        )


def small(**changes) -> SearchConfig:  # type: ignore[no-untyped-def]
    base = {"generations": 4, "init_models": 4, "random_mix": 2, "crossovers": 2, "max_unseen": 6, "screen": False}
    return SearchConfig(**{**base, **changes})


def test_published_defaults() -> None:
    c = SearchConfig()
    assert (c.generations, c.init_models, c.mutations_per_parent, c.crossovers, c.random_mix) == (10, 10, 1, 5, 5)
    assert (c.max_unseen, c.seed, c.min_params, c.max_params) == (100, 1, 1e6, 1e9)
    assert c.objectives == ("non_embedding_params", "onnx_latency", "onnx_memory")
    assert c.space.mutation_prob == 0.3 and c.space.n_head == (2, 4, 8)
    assert c.space.n_layer == tuple(range(1, 11)) and c.space.d_model == tuple(range(128, 961, 64))
    assert (c.measure.seq_len, c.measure.batch_size, c.measure.graph) == (1024, 1, "next-token")


def test_a_full_run_follows_the_procedure() -> None:
    config = small()
    fake = FakeEvaluator()
    events: list[str] = []
    state = Search(config, fake).run(on_event=lambda e, s, d: events.append(e))
    assert state.finished and [g.generation for g in state.log] == [1, 2, 3, 4]
    # Nothing is measured twice, everything measured respects the constraint, population sizes hold.
    assert len(fake.calls) == len(set(fake.calls)) == len(state.records)
    assert all(1e6 <= r.values["non_embedding_params"] <= 1e9 for r in state.records)
    assert state.log[0].evaluated == 4
    assert all(1 <= g.evaluated <= 6 for g in state.log[1:])
    # Later generations come from mutations / crossovers of front members, or fresh samples.
    front_ids = {r.archid for r in Search(config, fake).front(state)}
    later = [r for r in state.records if r.generation > 1]
    assert any(r.parent for r in later) and any(r.parents for r in later)
    for r in later:
        if r.parent:
            assert r.parent in {x.archid for x in state.records if x.generation < r.generation}
    assert front_ids
    # Hypervolume of a cumulative front never decreases; nothing is built after the last generation.
    hv = [g.hypervolume for g in state.log]
    assert hv == sorted(hv) and 0 < hv[-1] <= 1
    assert state.pending == [] and events.count("generation_ready") == 3
    assert events[-1] == "finished"


def test_same_seed_same_search_other_seed_other_search() -> None:
    a = Search(small(), FakeEvaluator()).run()
    b = Search(small(), FakeEvaluator()).run()
    c = Search(small(seed=2), FakeEvaluator()).run()
    ids = lambda s: [r.archid for r in s.records]  # noqa: E731
    assert ids(a) == ids(b) != ids(c)


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("stop_after", [1, 4, 5, 9, 13])
def test_resume_gives_the_same_front_and_measures_nothing_twice(stop_after: int) -> None:
    config = small()
    reference = Search(config, FakeEvaluator()).run()

    fake = FakeEvaluator()
    saved: list[str] = []

    def checkpoint(event: str, state: SearchState, data: dict) -> None:
        saved.append(json.dumps(state.to_dict()))  # what the run folder would hold
        if event == "arch_start" and len(fake.calls) == stop_after:
            raise Interrupt  # Ctrl-C in the middle of the next measurement

    with pytest.raises(Interrupt):
        Search(config, fake).run(on_event=checkpoint)
    resumed_from = SearchState.from_dict(json.loads(saved[-1]))
    assert len(resumed_from.records) == stop_after

    final = Search(config, fake).run(resumed_from)
    assert len(fake.calls) == len(set(fake.calls)) == len(reference.records)
    assert [r.archid for r in final.records] == [r.archid for r in reference.records]
    search = Search(config, FakeEvaluator())
    assert [r.archid for r in search.front(final)] == [r.archid for r in search.front(reference)]
    assert [g.hypervolume for g in final.log] == [g.hypervolume for g in reference.log]


def test_resume_at_a_generation_boundary() -> None:
    config = small()
    reference = Search(config, FakeEvaluator()).run()
    boundary: list[str] = []

    def grab(event: str, state: SearchState, data: dict) -> None:
        if event == "generation_done" and state.generation == 2:
            boundary.append(json.dumps(state.to_dict()))
            raise Interrupt  # stopped after the generation's outputs, before the next population

    with pytest.raises(Interrupt):
        Search(config, FakeEvaluator()).run(on_event=grab)
    fake = FakeEvaluator()
    final = Search(config, fake).run(SearchState.from_dict(json.loads(boundary[0])))
    assert [r.archid for r in final.records] == [r.archid for r in reference.records]
    assert len(fake.calls) == len(reference.records) - sum(g.evaluated for g in reference.log[:2])


def test_candidates_outside_the_constraint_are_never_measured() -> None:
    fake = FakeEvaluator()
    state = Search(small(min_params=5e6, max_params=2e7), fake).run()
    assert state.records
    assert all(5e6 <= Arch(**r.arch).non_embedding_params <= 2e7 for r in state.records)


def test_impossible_constraints() -> None:
    with pytest.raises(LtsError, match=r"min_params .* is larger than max_params"):
        small(min_params=2e7, max_params=1e7)
    with pytest.raises(LtsError, match=r"no architecture of the search space has between 1e\+09 and 2e\+09"):
        small(min_params=1e9, max_params=2e9)


def test_a_narrow_constraint_still_gets_its_architectures() -> None:
    # Random draws almost never hit exactly one parameter count; the valid ones are then listed.
    narrow = small(min_params=1_056_512, max_params=1_056_512, patience=1, generations=2)
    state = Search(narrow, FakeEvaluator()).run()
    assert state.records and all(Arch(**r.arch).non_embedding_params == 1_056_512 for r in state.records)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"generations": 0}, "generations must be at least 1"),
        ({"init_models": -1}, "init_models must be at least 1"),
        ({"max_unseen": 0}, "max_unseen must be at least 1"),
        ({"crossovers": -2}, "crossovers must be at least 0, got -2"),
        ({"random_mix": 0, "crossovers": 0, "mutations_per_parent": 0}, "generations after the first would be empty"),
        ({"objectives": ("onnx_latency", "accuracy")}, "objectives must be chosen from .*, got 'accuracy'"),
    ],
)
def test_bad_search_settings(changes: dict, fragment: str) -> None:
    with pytest.raises(LtsError, match=fragment):
        small(**changes)


def test_identical_architectures_keep_one_id() -> None:
    # archai mutated saved configs in place (adding arch_type), so equal architectures got new ids.
    space = SearchSpace(mutation_prob=0.0)
    import random

    arch = Arch(n_layer=3, d_model=256, d_inner=512, n_head=4)
    reloaded = Arch.from_config(json.loads(json.dumps(arch.to_config())))
    assert space.mutate(arch, random.Random(0)).archid == reloaded.archid == arch.archid


def test_space_operators_stay_in_the_space() -> None:
    import random

    space = SearchSpace()
    rng = random.Random(5)
    a, b = space.sample(rng), space.sample(rng)
    for _ in range(200):
        for child in (space.mutate(a, rng), space.crossover(a, b, rng), space.sample(rng)):
            space.check(child)
            assert child.d_model % child.n_head == 0
    with pytest.raises(LtsError, match=r"d_model 100 is outside the search space \(128\.\.960 step 64\)"):
        space.check(Arch(n_layer=2, d_model=100, d_inner=128, n_head=2))
