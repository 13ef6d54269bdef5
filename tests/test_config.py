"""Config loading: defaults < file < flags; unknown keys, wrong types and broken files are named."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from lts_cli.config import load, load_mapping
from lts_cli.errors import LtsError
from lts_cli.search_config import SearchConfig
from lts_cli.settings import MeasureSettings

ROOT = Path(__file__).parent.parent


def test_configs_profile_yaml_mirrors_the_defaults() -> None:
    shipped = yaml.safe_load((ROOT / "configs" / "profile.yaml").read_text())
    assert shipped == dataclasses.asdict(MeasureSettings())


def test_flags_override_file_override_defaults(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("seq_len: 192\ntrials: 7\n")
    settings = load(MeasureSettings, path, trials=3, threads=None)
    assert (settings.seq_len, settings.trials, settings.threads) == (192, 3, 1)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("seq_lenn: 12\n", "unknown key 'seq_lenn' (did you mean 'seq_len'?)"),
        ("seq_len: twelve\n", "seq_len must be an integer"),
        ("graph: full\n", "graph must be one of next-token, logits"),
        ("adaptive: 1\n", "adaptive must be true or false"),
        ("seq_len: 0\n", "seq_len must be at least 1, got 0"),
        ("seq_len: [1\n", "invalid YAML at line"),
        ("- 1\n- 2\n", "expected a mapping"),
    ],
)
def test_bad_files_are_named(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(LtsError) as info:
        load(MeasureSettings, path)
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_bad_json_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"seq_len": 12,}')
    with pytest.raises(LtsError, match=r"invalid JSON at line 1"):
        load_mapping(bad)
    with pytest.raises(LtsError, match="no such file"):
        load_mapping(tmp_path / "missing.yaml")
    other = tmp_path / "settings.toml"
    other.write_text("x = 1")
    with pytest.raises(LtsError, match=r"unsupported file type \.toml"):
        load_mapping(other)
    binary = tmp_path / "latin1.yaml"
    binary.write_bytes("seq_len: 12 # caf\xe9\n".encode("latin-1"))
    with pytest.raises(LtsError, match="not UTF-8"):
        load_mapping(binary)


def test_inconsistent_settings() -> None:
    with pytest.raises(LtsError, match="target_ci"):
        MeasureSettings(target_ci=3)


def test_configs_search_yaml_mirrors_the_defaults() -> None:
    from lts_cli.config import from_mapping

    path = ROOT / "configs" / "search.yaml"
    assert from_mapping(SearchConfig, load_mapping(path), str(path)) == SearchConfig()


def test_search_config_sections_merge_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("generations: 3\nmin_params: 1e5\nspace:\n  n_head: [4]\nmeasure:\n  seq_len: 128\n")
    config = load(SearchConfig, path, measure={"trials": 9}, seed=7)
    assert (config.generations, config.seed, config.min_params) == (3, 7, 1e5)
    assert config.space.n_head == (4,) and config.space.d_model == tuple(range(128, 961, 64))
    assert (config.measure.seq_len, config.measure.trials, config.measure.adaptive) == (128, 9, True)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("generation: 3\n", "unknown key 'generation' (did you mean 'generations'?)"),
        ("space:\n  d_modle: [128]\n", "space: unknown key 'd_modle' (did you mean 'd_model'?)"),
        ("measure:\n  seq_len: -1\n", "measure.seq_len must be at least 1, got -1"),
        ("space:\n  d_model: {min: 512, max: 128}\n", "min <= max"),
        ("space: [1, 2]\n", "space must be a mapping"),
        ("generations: 0\n", "generations must be at least 1"),
        ("min_params: 2e6\nmax_params: 1e6\n", "min_params (2e+06) is larger than max_params (1e+06)"),
    ],
)
def test_bad_search_files_are_named(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(LtsError) as info:
        load(SearchConfig, path)
    assert str(path) in str(info.value) and fragment in str(info.value), str(info.value)
