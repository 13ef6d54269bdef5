"""The whole space, predicted: hypervolume contributions, the predicted optimum and the whole-space
strategy, with a fake evaluator and a screener that predicts it (exactly, or with a known bias)."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

import pytest

from lts_cli.errors import ConfigError, TooFewMeasurements
from lts_cli.pareto import _hv, contribution, hypervolume, pareto_front
from lts_cli.screening import choose
from lts_cli.search import Search, SearchState
from lts_cli.search_config import SearchConfig
from lts_cli.search_state import Record
from lts_cli.space import Arch, SearchSpace
from lts_cli.whole_space import optimum
from tests.test_search import FakeEvaluator

SPACE = SearchSpace(n_layer=(1, 2, 3, 4), d_model=(64, 128, 192, 256), d_inner=(64, 128, 256, 512), n_head=(2, 4))
OBJECTIVES = ("non_embedding_params", "onnx_latency", "onnx_memory")


class FakeScreener:
    """Predicts the fake evaluator's values, its latency scaled by `bias`; needs `need` measurements."""

    def __init__(self, bias: float = 1.0, margin: float = 0.0, need: int = 4) -> None:
        self.bias, self.margin, self.need = bias, margin, need
        self.evaluate = FakeEvaluator()

    def fit(self, records: list[Record]) -> dict[str, dict[str, float]]:
        if len(records) < self.need:
            raise TooFewMeasurements(f"needs {self.need}, has {len(records)}")
        return {"onnx_latency": {"n": len(records), "cv_median": 0.0, "cv_p90": 0.0, "margin": self.margin}}

    def predict(self, arch: Arch) -> dict[str, float]:
        values = self.evaluate(arch).values
        return {name: values[name] * (self.bias if name == "onnx_latency" else 1.0) for name in OBJECTIVES}

    def predict_many(self, archs: Sequence[Arch]) -> list[dict[str, float]]:
        return [self.predict(a) for a in archs]


def whole(**changes) -> SearchConfig:  # type: ignore[no-untyped-def]
    base = {"space": SPACE, "min_params": 0, "init_models": 6, "strategy": "whole-space", "round_size": 4}
    return SearchConfig(**{**base, **changes})


def random_points(rng: random.Random, n: int) -> list[tuple[float, ...]]:
    return [tuple(rng.random() for _ in range(3)) for _ in range(n)]


def test_a_points_contribution_is_the_hypervolume_it_adds() -> None:
    rng = random.Random(3)
    for _ in range(200):
        others, p = random_points(rng, rng.randint(0, 12)), random_points(rng, 1)[0]
        added = hypervolume([*others, p], (1, 1, 1)) - hypervolume(others, (1, 1, 1))
        assert contribution(p, others, (1, 1, 1)) == pytest.approx(added, abs=1e-12)


def test_three_objective_hypervolume_matches_slicing() -> None:
    rng = random.Random(5)
    for _ in range(100):  # hypervolume's 3-D sweep against the generic slicing recursion
        points = random_points(rng, rng.randint(1, 30))
        assert hypervolume(points, (1, 1, 1)) == pytest.approx(_hv(points, (1.0, 1.0, 1.0)), abs=1e-12)
    assert hypervolume([(0.5, 0.5, 0.5), (0.5, 0.5, 0.5)], (1, 1, 1)) == pytest.approx(0.125)  # by hand


def test_greedy_choice_matches_recomputing_every_gain() -> None:
    rng = random.Random(7)
    bounds = {"non_embedding_params": 1.0, "onnx_latency": 1.0, "onnx_memory": 1.0}

    def values(p: tuple[float, ...]) -> dict[str, float]:
        return {"non_embedding_params": 1 - p[0], "onnx_latency": p[1], "onnx_memory": p[2]}

    front, candidates = random_points(rng, 8), random_points(rng, 60)
    got = choose([values(p) for p in candidates], [values(p) for p in front], OBJECTIVES, bounds, {}, 5)
    chosen: list[int] = []
    base = [front[i] for i in pareto_front(front)]
    for _ in range(5):  # eager greedy: every gain recomputed after each choice
        gains = {i: contribution(candidates[i], base, (1, 1, 1)) for i in range(60) if i not in chosen}
        best = max(gains, key=lambda i: (gains[i], -i))
        if gains[best] <= 0:
            break
        chosen.append(best)
        base.append(candidates[best])
    assert [i for i, _ in got] == chosen
    assert [g for _, g in got] == sorted((g for _, g in got), reverse=True)


def test_the_screen_measures_one_of_two_copies_and_what_lies_within_the_margin() -> None:
    bounds = {"non_embedding_params": 1.0, "onnx_latency": 1.0, "onnx_memory": 1.0}

    def values(params: float, latency: float, memory: float) -> dict[str, float]:
        return {"non_embedding_params": params, "onnx_latency": latency, "onnx_memory": memory}

    front = [values(0.5, 0.5, 0.5)]
    copy = values(0.9, 0.2, 0.5)  # adds 0.4 x 0.8 x 0.5 - 0.4 x 0.5 x 0.5 = 0.06 (by hand)
    other = values(0.3, 0.1, 0.5)  # adds 0.3 x 0.9 x 0.5 - the part under the copy's box
    behind = values(0.5, 0.55, 0.5)  # dominated as predicted, not 20% better in latency
    candidates = [copy, copy, other]
    assert [i for i, _ in choose(candidates, front, OBJECTIVES, bounds, {}, 3)] == [0, 2]  # one copy only
    assert [i for i, _ in choose(candidates, front, OBJECTIVES, bounds, {}, 1)] == [0]
    assert [i for i, _ in choose([behind], front, OBJECTIVES, bounds, {"onnx_latency": 0.2}, 4)] == [0]
    assert choose([behind], front, OBJECTIVES, bounds, {"onnx_latency": 0.05}, 4) == []


def test_the_optimum_holds_the_measured_front() -> None:
    rng = random.Random(11)
    bounds = {"non_embedding_params": 1.0, "onnx_latency": 1.0, "onnx_memory": 1.0}

    def values(p: tuple[float, ...]) -> dict[str, float]:
        return {"non_embedding_params": 1 - p[0], "onnx_latency": p[1], "onnx_memory": p[2]}

    measured = [values(p) for p in random_points(rng, 10)]
    best = optimum(measured, [values(p) for p in random_points(rng, 200)], OBJECTIVES, bounds)
    assert 0 < best.share < 1 and best.predicted > 0
    alone = optimum(measured, [], OBJECTIVES, bounds)
    assert alone.share == 1.0 and alone.predicted == 0 and alone.hypervolume < best.hypervolume


def test_whole_space_with_an_exact_model_reaches_the_optimum_without_measuring_everything() -> None:
    fake = FakeEvaluator()
    config = whole(min_gain=0.0)
    state = Search(config, fake, screener=FakeScreener()).run()
    assert state.finished and state.stopped and "min-gain" in state.stopped
    everything = config.whole_space()
    assert len(fake.calls) == len(set(fake.calls)) < len(everything) / 2
    truth = Search(SearchConfig(space=SPACE, min_params=0, screen=False), FakeEvaluator())
    all_measured = SearchState(1, [], [Record(a.to_dict(), 1, values=FakeEvaluator()(a).values) for a in everything],
                               [], bounds=state.bounds)  # fmt: skip
    assert Search(config, fake, screener=FakeScreener()).hypervolume(state) == pytest.approx(
        truth.hypervolume(all_measured), rel=1e-9
    )  # the front of the whole space, measured
    shares = [g.optimum["share"] for g in state.log if g.optimum and "share" in g.optimum]
    assert shares and all(0 < s <= 1 for s in shares) and shares[-1] == pytest.approx(1.0)
    assert state.log[0].optimum == {"skipped": "needs 4, has 0"} or "share" in (state.log[0].optimum or {})


def test_whole_space_stops_at_max_measurements_and_resumes_exactly() -> None:
    config = whole(max_measurements=14, min_gain=0.0)
    reference = Search(config, FakeEvaluator(), screener=FakeScreener(bias=1.3)).run()
    assert len(reference.records) == 14 and reference.stopped == "reached --max-measurements (14)"
    for stop_after in (3, 7, 10):
        fake, saved = FakeEvaluator(), []

        def checkpoint(event: str, state: SearchState, data: dict, fake=fake, saved=saved, k=stop_after) -> None:  # type: ignore[no-untyped-def]
            saved.append(json.dumps(state.to_dict()))
            if event == "arch_start" and len(fake.calls) == k:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            Search(config, fake, screener=FakeScreener(bias=1.3)).run(on_event=checkpoint)
        resumed = SearchState.from_dict(json.loads(saved[-1]))
        final = Search(config, fake, screener=FakeScreener(bias=1.3)).run(resumed)
        assert len(fake.calls) == len(set(fake.calls)) == 14  # nothing measured twice
        assert [r.archid for r in final.records] == [r.archid for r in reference.records]
        assert [g.optimum for g in final.log] == [g.optimum for g in reference.log]


def test_a_screened_evolution_reports_its_share_of_the_optimum() -> None:
    config = SearchConfig(space=SPACE, min_params=0, generations=4, init_models=6, crossovers=2, random_mix=2)
    state = Search(config, FakeEvaluator(), screener=FakeScreener()).run()
    shares = [g.optimum["share"] for g in state.log if "share" in (g.optimum or {})]
    assert len(shares) == len(state.log) and all(0 < s <= 1 for s in shares)


def test_whole_space_needs_an_enumerable_space_and_latency_objectives() -> None:
    widths = {"d_model": tuple(range(64, 4097, 16)), "d_inner": tuple(range(64, 8193, 32))}
    huge = SearchSpace(n_layer=tuple(range(1, 41)), **widths)
    with pytest.raises(ConfigError, match="more than 200,000"):
        SearchConfig(space=huge, strategy="whole-space")
    assert not SearchConfig(space=huge).enumerable()  # the evolution runs, and skips the optimum
    with pytest.raises(ConfigError, match="peak_rss"):
        SearchConfig(strategy="whole-space", objectives=("non_embedding_params", "peak_rss"))


SMALL = """\
space:
  n_layer: {min: 1, max: 2, step: 1}
  d_model: {min: 64, max: 192, step: 64}
  d_inner: {min: 64, max: 192, step: 64}
  n_head: [2, 4]
  n_positions: 256
min_params: 0
init_models: 10
generations: 3
measure: {seq_len: 256, trials: 10, min_trials: 3}
"""


@pytest.mark.slow  # measures all 36 architectures of a small space
def test_the_predicted_optimum_against_the_whole_space_measured(run_cli, lts_home, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from lts_cli.measurer import Measurer
    from lts_cli.predictor import Screener
    from lts_cli.runs import RunFolder
    from lts_cli.store import open_store

    (tmp_path / "small.yaml").write_text(SMALL)
    result = run_cli("search", "--config", str(tmp_path / "small.yaml"), "--name", "s", "--no-plots", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)["hypervolume"]
    assert len(summary["share_of_predicted_optimum"]) == 3
    assert all(0 < s <= 1 for s in summary["share_of_predicted_optimum"])
    run = RunFolder.open("s")
    config, state = run.config(), run.state()
    assert state is not None and state.bounds is not None
    search = Search(config, FakeEvaluator(), screener=FakeScreener())
    assert summary["predicted_optimum_per_generation"][-1] >= search.hypervolume(state)

    # The model's optimum against the measured one. All 36 are measured again together, so that the
    # machine's drift between the run and now (30% on this machine, once) is not taken for model error:
    # the model learns from the run's architectures and predicts the others.
    space = config.whole_space()
    assert len(space) == 36
    ran = {r.archid for r in state.records}
    with open_store() as store:
        fresh = Measurer(config.measure, config.objectives, store, use_cache=False)
        now = {a.archid: fresh.evaluate(a).values for a in space}
        screener = Screener(fresh)
        screener.fit([Record(a.to_dict(), 1, values=now[a.archid]) for a in space if a.archid in ran])
        others = screener.predict_many([a for a in space if a.archid not in ran])
    predicted = optimum([now[a] for a in ran], others, config.objectives, state.bounds).hypervolume

    everything = [Record(a.to_dict(), 1, values=now[a.archid]) for a in space]
    truth = search.hypervolume(SearchState(1, [], everything, [], bounds=state.bounds))
    # 18 runs here, 8 with a busy core: 0.979..1.003 of the measured optimum, which is biased high
    # (the front of noisy timings keeps the lucky ones; the model's is not).
    assert predicted == pytest.approx(truth, rel=0.07)
