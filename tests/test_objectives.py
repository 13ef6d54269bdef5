"""The objective registry and the objectives it adds: choosing them per search, exact int8 file sizes,
decode latency measured like an export's, and outputs (CSV, summary, plots) that follow the choice."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lts_cli import gpt2_onnx
from lts_cli import objectives as registry
from lts_cli.errors import LtsError
from lts_cli.gallery import find
from lts_cli.plots import plot_names
from lts_cli.search_config import SearchConfig
from lts_cli.space import Arch
from tests.conftest import TINY_ARCH, TINY_SEARCH, assert_user_error


def test_the_published_default_is_unchanged() -> None:
    assert registry.DEFAULT == ("non_embedding_params", "onnx_latency", "onnx_memory")  # archai's text-generation task
    assert [registry.get(o).maximize for o in registry.DEFAULT] == [True, False, False]
    assert {registry.get(o).kind for o in registry.REGISTRY} <= {"exact", "measured", "predicted"}


def test_bad_objective_lists(run_cli) -> None:
    assert_user_error(
        run_cli("search", "--objectives", "onnx_latency,accuracy"), "'accuracy' is not an objective", code=2
    )
    assert_user_error(run_cli("search", "--objectives", "onnx_latency"), "--objectives must name at least two", code=2)
    assert_user_error(
        run_cli("search", "--objectives", "onnx_latency,decode_latency", "--decode-context", "1024"),
        "--decode-context (1024) leaves no room for a new token within space.n_positions (1024)",
        code=2,
    )
    with pytest.raises(LtsError, match="at least two different"):
        SearchConfig(objectives=("onnx_latency", "onnx_latency"))


@pytest.mark.parametrize("graph", ["next-token", "causal-lm-with-past"])
@pytest.mark.parametrize("dtype", gpt2_onnx.DTYPES)
def test_exact_file_sizes_equal_the_files_written(graph: str, dtype: str) -> None:
    for arch in (Arch(**TINY_ARCH), Arch(n_layer=2, d_model=64, d_inner=96, n_head=4, vocab_size=300, n_positions=40)):
        written = len(gpt2_onnx.build(arch, graph=graph, dtype=dtype).embedded().SerializeToString())
        assert gpt2_onnx.file_size(arch, graph, dtype) == written


def test_int8_size_of_a_published_architecture() -> None:
    from lts_cli.gallery import find

    arch = find("gpt2_a9e3").arch
    fp32, int8 = gpt2_onnx.file_size(arch) / 2**20, gpt2_onnx.file_size(arch, dtype="int8") / 2**20
    assert abs(fp32 - 29.06) < 0.1  # the published memory of this architecture
    # int8: one byte per weight of the projections and the embedding, fp32 for the rest.
    assert 0.25 * fp32 < int8 < 0.3 * fp32


def test_a_search_on_chosen_objectives(run_cli, tmp_path: Path, lts_home: Path, monkeypatch) -> None:
    from lts_cli import measurer
    from tests.conftest import fake_measure

    kinds: list[str] = []
    real = fake_measure([])

    def measure(arch, settings, kind, fingerprint, progress=None):  # type: ignore[no-untyped-def]
        kinds.append(kind)
        return real(arch, settings, kind, fingerprint, progress)

    monkeypatch.setattr(measurer, "measure", measure)
    config = tmp_path / "s.yaml"
    config.write_text(TINY_SEARCH)
    chosen = "non_embedding_params,decode_latency,onnx_memory"
    result = run_cli("search", "--config", str(config), "--objectives", chosen, "--name", "d", "--json")
    assert result.exit_code == 0, result.stderr
    assert set(kinds) == {"decode"}  # no prefill measurement: only the with-past graph per architecture
    summary = json.loads(result.stdout)
    assert list(summary["objectives"]) == chosen.split(",")
    assert set(summary["hypervolume"]["normalization_bounds"]) == set(chosen.split(","))
    assert len(summary["hypervolume"]["reference_point"]) == 3
    run = lts_home / "runs" / "d"
    rows = list(csv.DictReader((run / "results.csv").open()))
    assert list(rows[0])[:4] == ["archid", "non_embedding_params", "decode_latency", "onnx_memory"]
    assert all(float(r["decode_latency"]) > 0 for r in rows) and "onnx_latency" not in rows[0]
    pngs = sorted(p.name for p in run.glob("*.png"))
    assert pngs == sorted(plot_names(tuple(chosen.split(","))))
    assert pngs == sorted(
        ["pareto_params_vs_decode.png", "pareto_params_vs_memory.png", "pareto_decode_vs_memory.png", "hypervolume.png"]
    )
    shown = run_cli("search", "show", "d")
    assert "decode s" in shown.stdout and "memory MiB" in shown.stdout and "latency s" not in shown.stdout


def test_only_needed_measurements_are_made(monkeypatch: pytest.MonkeyPatch) -> None:
    from lts_cli import measurer
    from lts_cli.settings import MeasureSettings
    from lts_cli.store import open_store

    def refusing(*args: object, **kwargs: object) -> None:
        raise AssertionError("no measurement expected")

    monkeypatch.setattr(measurer, "measure", refusing)
    arch = Arch(**TINY_ARCH)
    with open_store() as store:
        exact = measurer.Measurer(MeasureSettings(), ("non_embedding_params", "onnx_memory_int8"), store).evaluate(arch)
    assert exact.prefill is None and exact.decode is None
    fp32_weights_mib = 4 * arch.unique_params / 2**20  # int8: one byte per weight of most of them
    assert 0.25 * fp32_weights_mib < exact.values["onnx_memory_int8"] < 0.35 * fp32_weights_mib


@pytest.mark.slow
def test_decode_latency_agrees_with_an_export_profile(run_cli, tiny_model: Path, tmp_path: Path) -> None:
    """The objective (random weights, built in memory) and `lts profile EXPORT` time the same step."""
    folder = tmp_path / "onnx"
    assert run_cli("export", str(tiny_model), "-o", str(folder)).exit_code == 0
    flags = ["--trials", "60", "--warmup", "5", "--threads", "1"]
    objective = run_cli(
        "profile", str(tiny_model / "arch.json"), "--objectives", "decode_latency", "--decode-context", "64", *flags,
        "--json",
    )  # fmt: skip
    export = run_cli("profile", str(folder), "--seq-len", "64", *flags, "--json")
    assert objective.exit_code == 0 and export.exit_code == 0, (objective.stderr, export.stderr)
    ours = json.loads(objective.stdout)["objectives"]["decode_latency"]
    theirs = json.loads(export.stdout)["decode_per_token"]["median"]
    # Sub-millisecond steps timed on a shared machine: 1.6x apart has been seen here, so the bound is
    # loose; it still tells one decode step from, say, a cache of ten times the length.
    assert 0.5 < ours / theirs < 2.0, (ours, theirs)


def test_gallery_views_take_decode_measurements(run_cli) -> None:
    """A decode measurement in the cache does not confuse the gallery's prefill columns."""
    result = run_cli("profile", "gpt2_a9e3", "--seq-len", "16", "--decode-context", "16", "--trials", "2", "--json")
    assert result.exit_code == 0, result.stderr
    listed = json.loads(run_cli("gallery", "list", "--json").stdout)
    mine = next(r for r in listed if r["id"].startswith("gpt2_a9e3"))
    assert mine["lts"]["latest_measurement"]["kind"] == "prefill"
    assert run_cli("gallery", "list").exit_code == 0
    shown = run_cli("gallery", "show", "gpt2_a9e3")
    assert shown.exit_code == 0 and "decode 1x1 after 16" in shown.stdout


def test_kv_cache_memory_is_the_cache_a_decode_step_keeps(tmp_path: Path) -> None:
    """The exact objective against the past key/value inputs of the with-past graph lts exports."""
    import onnxruntime as ort

    from lts_cli import gpt2_onnx
    from lts_cli.measurer import exact_values
    from lts_cli.runtime import decode_step_feeds
    from lts_cli.settings import MeasureSettings

    arch = Arch(n_layer=2, d_model=64, d_inner=128, n_head=4, vocab_size=512, n_positions=64)
    settings = MeasureSettings(decode_context=40, batch_size=2)
    graph = gpt2_onnx.build(arch, graph="causal-lm-with-past").embedded().SerializeToString()
    feeds = decode_step_feeds(ort.InferenceSession(graph), settings.batch_size, settings.decode_context)
    cached = sum(v.nbytes for k, v in feeds.items() if k.startswith("past_key_values."))
    value = exact_values(arch, settings, ["kv_cache_memory"])["kv_cache_memory"]
    assert value * 2**20 == cached == 2 * 2 * 40 * 64 * 4 * 2  # keys and values, layers, tokens, width, fp32, batch
    # A published architecture at the default context: 2 x 4 layers x 512 tokens x 128 x 4 bytes = 2 MiB.
    assert exact_values(find("gpt2_a9e3").arch, MeasureSettings(), ["kv_cache_memory"])["kv_cache_memory"] == 2.0
    # It needs the context to fit the model, as decode_latency does.
    assert registry.get("kv_cache_memory").unavailable(arch, MeasureSettings(decode_context=64)) is not None
