"""`lts` end to end, in-process: help, gallery, profile, the cache, and every bad input of issue 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lts_cli.space import parse_arch_spec
from tests.conftest import TINY, TINY_FAST, assert_user_error

A_ID = "gpt2_a9e3147996070fda25af4b39ed95b6a18d6d0402"


def test_the_six_commands_are_registered() -> None:
    import typer.main

    from lts_cli.cli import app

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert {"search", "train", "export", "profile", "gallery", "generate"} <= set(commands)
    assert {"list", "show"} <= set(commands["search"].commands)
    assert {"list", "show"} <= set(commands["gallery"].commands)


def test_gallery_list_json_has_the_twenty_published_models(run_cli) -> None:
    result = run_cli("gallery", "list", "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 20
    reference = Path(__file__).parent.parent / "lts_cli" / "data" / "gallery.json"
    published = {m["id"]: m["published"] for m in json.loads(reference.read_text())["models"]}
    for row in rows:
        assert row["lts"]["non_embedding_params_m"] == published[row["id"]]["non_embedding_params_m"]
        assert row["published"]["latency_seq_len"] == 192
        assert abs(row["lts"]["memory_mib_analytic"] - published[row["id"]]["memory_mb"]) < 1.0
        assert row["lts"]["latest_measurement"] is None


def test_gallery_list_table(run_cli) -> None:
    result = run_cli("gallery", "list")
    assert result.exit_code == 0
    assert "gpt2_a9e3147" in result.stdout and "1.06/1.06" in result.stdout and "29.06/~29.07" in result.stdout


def test_gallery_show(run_cli) -> None:
    result = run_cli("gallery", "show", "gpt2_ddf63", "--json")
    row = json.loads(result.stdout)
    assert row["id"] == "gpt2_ddf63c1125f1fed5a7dd3537f640834187719996"
    assert row["arch"] == {
        "n_layer": 10,
        "d_model": 384,
        "d_inner": 960,
        "n_head": 4,
        "vocab_size": 50257,
        "n_positions": 1024,
    }
    assert row["lts"]["non_embedding_params"] == 13_315_968 and row["lts"]["measurements"] == []
    text = run_cli("gallery", "show", "gpt2_ddf63")
    assert "13,315,968" in text.stdout and "not measured on this machine yet" in text.stderr
    assert_user_error(run_cli("gallery", "show", "gpt2_nope"), "no gallery model 'gpt2_nope'")
    assert_user_error(run_cli("gallery", "show", "gpt2_"), "no gallery model 'gpt2_'", "at least 4")


def profile_json(run_cli, *args: str) -> tuple[dict, str]:
    result = run_cli("profile", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_profile_inline_arch_then_cache_then_no_cache(run_cli) -> None:
    first, note = profile_json(run_cli, "--arch", TINY, *TINY_FAST)
    assert "decode_latency left out" in note and "at most 63" in note  # a context of 512 does not fit 64 positions
    p = first["prefill"]
    assert first["cached"] is False and p["runs"] == 3 and first["decode"] is None
    assert first["objectives"]["onnx_latency"] == p["latency_s"] > 0 and p["latency_mean_s"] > 0
    assert p["settings"]["seq_len"] == 16 and first["published"] is None
    assert first["objectives"]["onnx_memory"] == p["memory_mib"]  # the exact size is the file's
    assert 0 < p["file_bytes"] - 4 * parse_arch_spec(TINY).unique_params < 2**20  # fp32 weights, a graph around them
    assert first["kinds"] == {
        "non_embedding_params": "exact", "total_params": "exact", "forward_flops": "exact",
        "onnx_latency": "measured", "onnx_memory": "exact", "onnx_memory_int8": "exact", "peak_rss": "measured",
    }  # fmt: skip

    again, note = profile_json(run_cli, "--arch", TINY, *TINY_FAST)
    assert again["cached"] is True and "prefill: cached from" in note
    assert again["prefill"]["latency_s"] == p["latency_s"] and again["prefill"]["measured_at"] == p["measured_at"]

    # A different setting is a different measurement; --no-cache measures again.
    other, _ = profile_json(run_cli, "--arch", TINY, *TINY_FAST[:2], "--trials", "4")
    assert other["cached"] is False and other["prefill"]["runs"] == 4
    fresh, _ = profile_json(run_cli, "--arch", TINY, *TINY_FAST, "--no-cache")
    assert fresh["cached"] is False

    # The architecture is now known to the workspace by its id (or a unique prefix of it).
    by_id, _ = profile_json(run_cli, first["archid"][:14], *TINY_FAST)
    assert by_id["cached"] is True and by_id["archid"] == first["archid"]

    # The decode objective is measured (and cached) apart from the prefill one.
    decode, _ = profile_json(run_cli, "--arch", TINY, *TINY_FAST, "--decode-context", "8")
    assert decode["prefill"]["cached"] is True and decode["decode"]["cached"] is False
    assert decode["objectives"]["decode_latency"] == decode["decode"]["latency_s"] > 0
    assert decode["decode"]["settings"]["decode_context"] == 8 and "seq_len" not in decode["decode"]["settings"]


def test_profile_gallery_model_memory_matches_published(run_cli) -> None:
    result, note = profile_json(
        run_cli, "gpt2_a9e3", "--seq-len", "32", "--trials", "2", "--warmup", "0", "--objectives",
        "non_embedding_params,onnx_latency,onnx_memory",
    )  # fmt: skip
    assert result["label"] == A_ID
    assert abs(result["objectives"]["onnx_memory"] - 29.06) < 1.0
    assert result["published"] == {
        "non_embedding_params_m": 1.06,
        "latency_s": 0.008,
        "latency_seq_len": 192,
        "memory_mib": 29.06,
    }
    assert "--seq-len 192" in note  # says the published latency is not like-for-like
    listed = json.loads(run_cli("gallery", "list", "--json").stdout)
    mine = next(r for r in listed if r["id"] == A_ID)
    assert mine["lts"]["latest_measurement"]["latency_s"] == result["objectives"]["onnx_latency"]


def test_profile_from_files(run_cli, tmp_path: Path) -> None:
    as_json = tmp_path / "arch.json"
    as_json.write_text(
        json.dumps({"n_layer": 1, "d_model": 32, "d_inner": 64, "n_head": 2, "vocab_size": 512, "n_positions": 64})
    )
    as_yaml = tmp_path / "arch.yaml"
    as_yaml.write_text("n_layer: 1\nd_model: 32\nd_inner: 64\nn_head: 2\nvocab_size: 512\nn_positions: 64\n")
    one, _ = profile_json(run_cli, str(as_json), *TINY_FAST)
    two, _ = profile_json(run_cli, str(as_yaml), *TINY_FAST)
    assert one["archid"] == two["archid"] and two["cached"] is True


def test_profile_table_output(run_cli) -> None:
    result = run_cli("profile", "--arch", TINY, *TINY_FAST)
    assert result.exit_code == 0, result.stderr
    assert "ONNX latency" in result.stdout and "ONNX memory" in result.stdout and "peak RSS" in result.stdout


# ---- bad input: one line on stderr, exit 1 (2 for usage), no traceback, nothing cached lost ----


def test_unknown_id(run_cli) -> None:
    assert_user_error(run_cli("profile", "gpt2_doesnotexist"), "unknown architecture 'gpt2_doesnotexist'")


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("n_layer4", "malformed --arch"),
        ("n_layer=2,d_model=100,d_inner=64,n_head=3", "d_model (100) is not divisible by n_head (3)"),
        ("n_layer=0,d_model=64,d_inner=64,n_head=2", "n_layer must be at least 1"),
        ("n_layer=2,d_model=-64,d_inner=64,n_head=2", "d_model must be at least 1"),
        ("n_layer=2,d_model=64,d_inner=64,n_head=2,depth=3", "unknown key 'depth'"),
    ],
)
def test_bad_arch_spec_is_a_usage_error(run_cli, spec: str, fragment: str) -> None:
    assert_user_error(run_cli("profile", "--arch", spec), fragment, code=2)


def test_id_and_arch_together_or_neither(run_cli) -> None:
    assert_user_error(run_cli("profile"), "give an architecture", code=2)
    assert_user_error(run_cli("profile", A_ID, "--arch", TINY), "not both", code=2)


def test_invalid_arch_files(run_cli, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("n_layer: [2\n")
    assert_user_error(run_cli("profile", str(broken)), str(broken), "invalid YAML at line")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    assert_user_error(run_cli("profile", str(bad_json)), "invalid JSON at line 1")
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"n_layer": 1, "d_model": 32, "d_inner": 64, "n_head": 2, "heads": 2}))
    assert_user_error(run_cli("profile", str(unknown)), "unknown architecture key 'heads'")
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"n_layer": 1, "d_model": 30, "d_inner": 64, "n_head": 4}))
    assert_user_error(run_cli("profile", str(invalid)), str(invalid), "not divisible")
    assert_user_error(run_cli("profile", str(tmp_path / "missing.json")), "no such file")


def test_unknown_config_key(run_cli, tmp_path: Path) -> None:
    config = tmp_path / "m.yaml"
    config.write_text("seq_len: 16\nrepeats: 3\n")
    assert_user_error(run_cli("profile", "--arch", TINY, "--config", str(config)), "unknown key 'repeats'", str(config))


def test_seq_len_beyond_positions(run_cli) -> None:
    result = run_cli("profile", "--arch", TINY, "--seq-len", "65")
    assert_user_error(result, "--seq-len 65 exceeds the model's n_positions (64); use --seq-len 64 or less", code=2)


def test_unwritable_home(run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("LTS_HOME", str(blocker / "home"))
    assert_user_error(run_cli("profile", "--arch", TINY, *TINY_FAST), "cannot write to the workspace", "LTS_HOME")
    assert_user_error(run_cli("gallery", "list"), "cannot write to the workspace")


def test_corrupt_database_keeps_the_file(run_cli, lts_home: Path) -> None:
    profile_json(run_cli, "--arch", TINY, *TINY_FAST)
    db = lts_home / "lts.db"
    original = db.read_bytes()
    db.write_bytes(b"garbage" * 1000)
    assert_user_error(run_cli("profile", "--arch", TINY, *TINY_FAST), str(db), "move it aside")
    assert db.read_bytes() == b"garbage" * 1000
    db.write_bytes(original)  # the cached measurement was not lost
    restored, _ = profile_json(run_cli, "--arch", TINY, *TINY_FAST)
    assert restored["cached"] is True


def test_traceback_only_with_lts_debug(lts_home: Path) -> None:
    cmd = [sys.executable, "-m", "lts_cli", "profile", "gpt2_doesnotexist"]
    env = {**os.environ, "LTS_HOME": str(lts_home)}
    plain = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert plain.returncode == 1
    assert plain.stderr.strip().splitlines() == [plain.stderr.strip()] and plain.stderr.startswith("Error: ")
    debug = subprocess.run(cmd, capture_output=True, text=True, env={**env, "LTS_DEBUG": "1"})
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "lts_cli.errors." in debug.stderr


@pytest.mark.parametrize("width", [40, 60, 80])
def test_narrow_terminals_never_cut_a_number(run_cli, lts_home: Path, monkeypatch, width: int) -> None:
    """Issue 18: on a terminal narrower than a table, its rows become `header: value` lines."""
    import io

    from rich.console import Console

    from lts_cli.cli import common

    (lts_home / "models" / "gpt2_a9e3147996070fda25af4b39ed95b6a18d6d0402").mkdir(parents=True)
    (lts_home / "models" / "gpt2_a9e3147996070fda25af4b39ed95b6a18d6d0402" / "metrics.json").write_text(
        '{"val_perplexity": 1234.5}'
    )
    for args, whole in (
        (["gallery", "list"], ["gpt2_a9e314799", "1.06/1.06", "13.32/13.32", "4/128/768/4", "0.008/-"]),
        (["models", "list"], ["gpt2_a9e3147996070fda25af4b39ed95b6a18d6d0402", "1,234.5", "trained here"]),
    ):
        screen = io.StringIO()
        monkeypatch.setattr(common, "out", Console(file=screen, width=width, force_terminal=True, color_system=None))
        assert run_cli(*args).exit_code == 0
        text = screen.getvalue()
        assert "…" not in text, text
        for value in whole:
            assert value in text, (value, text)
