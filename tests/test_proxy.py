"""`lts proxy`: rank statistics against hand-computed cases, a sample spread over the parameter range,
and a tiny end-to-end run that caches what it trained and resumes without training anything twice."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lts_cli import proxy, rankstats
from lts_cli.errors import ConfigError
from lts_cli.search_config import SearchConfig
from lts_cli.space import SearchSpace
from lts_cli.views import Event
from tests.conftest import assert_user_error

# ---- statistics by hand -------------------------------------------------------------------------


def test_kendall_by_hand_with_ties() -> None:
    # a = 1, 2, 3, 4 and b = 1, 3, 2, 2: pairs (i<j): (1,2) +, (1,3) +, (1,4) +, (2,3) -, (2,4) -, (3,4) tie in b.
    # concordant 3, discordant 2, ties only in b: 1 pair; tau-b = (3 - 2) / sqrt((6 - 0) * (6 - 1)) = 1 / sqrt(30).
    assert rankstats.kendall([1, 2, 3, 4], [1, 3, 2, 2]) == pytest.approx(1 / math.sqrt(30), rel=1e-12)
    assert rankstats.kendall([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(rankstats.kendall([1, 1, 1], [1, 2, 3]))


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    a = [1, 2, 3, 4, 5, 6, 7, 8]
    b = [2, 1, 4, 3, 6, 5, 8, 7]
    first = rankstats.bootstrap(rankstats.spearman, a, b, resamples=500, seed=3)
    assert first == rankstats.bootstrap(rankstats.spearman, a, b, resamples=500, seed=3)
    assert first[0] <= rankstats.spearman(a, b) <= first[1] <= 1.0


def test_top_overlap() -> None:
    # The best quarter (k = 2 of 8) by a is items 7, 6; by b items 7, 5: they share one.
    assert rankstats.top_overlap([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3, 4, 5, 9, 6, 10]) == (1, 2)


# ---- which architectures ------------------------------------------------------------------------


def test_the_sample_spans_the_parameter_range() -> None:
    config = SearchConfig()
    picked = proxy.spread_sample(8, config, seed=1)
    assert picked == proxy.spread_sample(8, config, seed=1)  # seeded
    params = [c.arch.non_embedding_params for c in picked]
    assert params == sorted(params) and len(set(params)) == 8
    low, high = config.space.params_range()
    edges = [
        math.exp(
            math.log(max(low, config.min_params)) + i / 8 * (math.log(high) - math.log(max(low, config.min_params)))
        )
        for i in range(9)
    ]
    assert params[0] < edges[2] and params[-1] > edges[6]  # not clustered at one end
    tiny = SearchConfig(space=SearchSpace(n_layer=(1,), d_model=(64,), d_inner=(64,), n_head=(2,)), min_params=0)
    with pytest.raises(ConfigError, match="only 1 architectures"):
        proxy.spread_sample(4, tiny)


# ---- end to end, on tiny architectures ---------------------------------------------------------

TINY_SPACE = """
min_params: 0
space:
  n_layer: [1, 2]
  d_model: [32, 64]
  d_inner: [32, 64, 96]
  n_head: [2]
  n_positions: 64
measure:
  seq_len: 32
"""
QUICK = ["--max-steps", "4", "--seq-len", "32", "--batch-size", "4", "--warmup-steps", "1", "--config"]


@pytest.mark.slow
def test_a_tiny_proxy_run_caches_and_resumes(
    run_cli, lts_home: Path, tmp_path: Path, shared_tokens, monkeypatch
) -> None:
    from lts_cli import training

    space = tmp_path / "space.yaml"
    space.write_text(TINY_SPACE)
    (tmp_path / "quick.yaml").write_text("eval_tokens: 128  # and the proxy defaults for the rest\n")
    quick = [*QUICK, str(tmp_path / "quick.yaml")]
    trained: list[str] = []
    real = training.train
    interrupt = {"at": 3}  # Ctrl-C in the middle of the third training

    def stop(event: Event) -> None:
        if event.kind == "step" and event.data == 2:
            raise KeyboardInterrupt

    def counting(target, config, corpus, **kwargs):  # type: ignore[no-untyped-def]
        trained.append(target.arch.archid)
        if len(trained) == interrupt["at"]:
            kwargs["on_event"] = stop
        return real(target, config, corpus, **kwargs)

    monkeypatch.setattr(training, "train", counting)
    cut = run_cli("proxy", "--sample", "4", "--space", str(space), *quick)
    assert cut.exit_code == 130 and "trains only the rest" in cut.stderr, (cut.stderr, cut.exception)
    assert len(trained) == 3
    interrupt["at"] = 0
    result = run_cli("proxy", "--sample", "4", "--space", str(space), *quick, "--json")
    assert result.exit_code == 0, result.stderr
    assert (
        len(trained) == 5 and trained[3] == trained[2]
    )  # the interrupted one again (from its checkpoint), then the last
    report = json.loads(result.stdout)
    assert len(report["architectures"]) == 4 and set(report["proxies"]) == {
        "non_embedding_params",
        "total_params",
        "forward_flops",
    }
    main = report["proxies"]["non_embedding_params"]
    assert -1 <= main["spearman"] <= 1 and main["top_k"] == 1 and "Spearman" in report["verdict"]
    assert Path(report["folder"], "proxy.png").read_bytes()[:4] == b"\x89PNG"
    # each evaluated once, on one sample for all; the wall time split by what it went to
    assert len({row["evaluated_tokens"] for row in report["architectures"]}) == 1
    assert report["architectures"][0]["evaluated_tokens"] > 0
    seconds = report["seconds"]
    assert set(seconds) == {"training steps", "evaluating", "checkpointing", "tokenizing", "other"}
    assert seconds["training steps"] > 0 and seconds["evaluating"] > 0 and min(seconds.values()) >= 0
    assert sum(seconds.values()) == pytest.approx(report["wall_s"], rel=1e-6)
    assert not list((lts_home / "proxy" / "models").glob("[!.]*"))  # the weights are not kept
    again = run_cli("proxy", "--sample", "4", "--space", str(space), *quick)
    assert again.exit_code == 0 and len(trained) == 5 and "4 of 4 already trained" in again.stderr
    assert "Spearman" in again.stdout and "non-embedding parameters" in again.stdout


def test_bad_proxy_input(run_cli, tmp_path: Path) -> None:
    assert_user_error(run_cli("proxy"), "one of --run, --archs, --sample", code=2)
    assert_user_error(run_cli("proxy", "--archs", "gpt2_a9e3,gpt2_80fa,gpt2_ddf6"), "at least 4 architectures", code=2)
    assert_user_error(run_cli("proxy", "--run", "nowhere"), "no search run named 'nowhere'")
    space = tmp_path / "space.yaml"
    space.write_text(TINY_SPACE)
    assert_user_error(run_cli("proxy", "--sample", "50", "--space", str(space)), "--sample 50", "only", code=2)


def test_a_run_without_measurements_and_a_corpus_shorter_than_a_block(
    run_cli, lts_home: Path, tmp_path: Path, shared_tokens
) -> None:
    import random

    from lts_cli.runs import RunFolder
    from lts_cli.search_state import SearchState

    RunFolder.create("fresh", SearchConfig(), SearchState(1, [], [], list(random.Random(0).getstate())))
    assert_user_error(run_cli("proxy", "--run", "fresh"), "'fresh' has evaluated no architecture yet", "--resume fresh")
    text = tmp_path / "short.txt"
    text.write_text("To be, or not to be.\n" * 40)  # a few hundred tokens: validation gets a few dozen
    space = tmp_path / "space.yaml"
    space.write_text(TINY_SPACE)
    result = run_cli("proxy", "--sample", "4", "--space", str(space), "--data", str(text), "--seq-len", "64")
    assert_user_error(result, "validation split has", "fewer than one block of --seq-len 64")
    assert not list((lts_home / "proxy" / "results").glob("*.json"))
