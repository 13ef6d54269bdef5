"""What the command line says: bad values exit 2 naming the flag (or the file and key), choices in
any case, --help whole and with every default, completion, piped tables, hints that run as printed."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from lts_cli import measurer
from lts_cli.space import Arch
from tests.conftest import TINY, TINY_FAST, TINY_SEARCH, assert_user_error
from tests.conftest import fake_measure as make

A_ID = "gpt2_a9e3147996070fda25af4b39ed95b6a18d6d0402"


@pytest.fixture
def fake_measure(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(measurer, "measure", make(calls))
    return calls


def test_the_like_for_like_hint_is_runnable(run_cli, tmp_path: Path) -> None:
    from lts_cli.gallery import find

    folder = tmp_path / "a folder with a long name and spaces"
    folder.mkdir()
    arch_file = folder / "the smallest published architecture.json"
    arch_file.write_text(json.dumps(find("gpt2_a9e3").arch.to_config()))
    first = run_cli("profile", str(arch_file), "--seq-len", "16", "--trials", "2", "--warmup", "0")
    assert first.exit_code == 0, first.stderr
    hint = first.stderr.split("`")[1]
    args = shlex.split(hint)
    assert args[:2] == ["lts", "profile"] and args[2] == str(arch_file) and args[3:] == ["--seq-len", "192"]
    # Runnable as printed (timed briefly here: the hint itself is what is checked).
    again = run_cli(*args[1:], "--trials", "2", "--warmup", "0")
    assert again.exit_code == 0, again.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["profile", "--arch", TINY, "--seq-len", "0"], "--seq-len must be at least 1, got 0"),
        (["profile", "--arch", TINY, "--trials", "0"], "--trials must be at least 1, got 0"),
        (["profile", "--arch", TINY, "--warmup", "-1"], "--warmup must be at least 0, got -1"),
        (["profile", "--arch", TINY, "--target-ci", "2"], "--target-ci is a relative half-width"),
        (["profile", "--arch", TINY, "--graph", "full"], "'full' is not one of 'next-token', 'logits'"),
        (["profile", "--arch", TINY, "--opt-level", "max"], "'--opt-level'"),
        (["profile", "--arch", TINY, "--seq-len", "ten"], "'--seq-len'"),
        (["search", "--generations", "0"], "--generations must be at least 1, got 0"),
        (["search", "--trials", "0"], "--trials must be at least 1, got 0"),
        (["search", "--max-params", "0"], "--max-params must be greater than 0"),
        (["search", "--min-params", "2e7", "--max-params", "1e7"], "--min-params (2e+07) is larger than --max-params"),
        (["generate", "m", "--temperature", "0"], "--temperature must be greater than 0 (for the most likely"),
        (["generate", "m", "--top-p", "1.5"], "--top-p must be in (0, 1], got 1.5"),
        (["generate", "m", "--top-k", "-1"], "--top-k must be 0 (off) or more"),
        (["generate", "m", "--max-new-tokens", "0"], "--max-new-tokens must be at least 1"),
        (["generate", "m", "--backend", "tpu"], "'--backend'"),
        (["train", "x.json", "--seq-len", "0"], "--seq-len must be at least 1"),
        (["train", "x.json", "--lr", "0"], "--lr must be greater than 0"),
        (["export", "m", "--quantize", "int4"], "'--quantize'"),
        # issue 18's smaller ones
        (
            ["generate", "m", "--temperature", "inf"],
            "--temperature must be greater than 0",
        ),
        (["proxy", "--sample", "0"], "'--sample': Input should be greater than or equal to 4"),
        (["search", "--max-params", "1000"], "--min-params (1e+06) is larger than --max-params (1000)"),
    ],
)
def test_invalid_option_values_exit_2_naming_the_flag(run_cli, args: list[str], fragment: str) -> None:
    assert_user_error(run_cli(*args), fragment, code=2)


def test_temperature_zero_suggests_greedy(run_cli) -> None:
    assert_user_error(run_cli("generate", "m", "--temperature", "0"), "--greedy", code=2)


def test_values_from_a_file_name_the_file_and_key(run_cli, tmp_path: Path) -> None:
    config = tmp_path / "s.yaml"
    config.write_text("generations: 0\n")
    assert_user_error(run_cli("search", "--config", str(config)), f"{config}: generations must be at least 1")


def test_choices_are_case_insensitive(run_cli) -> None:
    result = run_cli("profile", "--arch", TINY, *TINY_FAST, "--graph", "LOGITS", "--opt-level", "Basic", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["prefill"]["settings"]["graph"] == "logits"


def test_trials_below_the_adaptive_minimum_is_what_the_user_gets(run_cli, tmp_path: Path, fake_measure) -> None:
    config = tmp_path / "s.yaml"
    config.write_text(TINY_SEARCH)
    result = run_cli("search", "--config", str(config), "--trials", "1", "--adaptive", "--no-plots", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("below the adaptive minimum of 5 runs") == 1
    assert json.loads(result.stdout)["measure"]["trials"] == 1


def test_trials_one_times_one_run(run_cli) -> None:
    real = run_cli("profile", "--arch", TINY, "--seq-len", "8", "--trials", "1", "--adaptive", "--json")
    assert real.exit_code == 0, real.stderr
    assert json.loads(real.stdout)["prefill"]["runs"] == 1 and "below the adaptive minimum" in real.stderr


def _options():  # type: ignore[no-untyped-def]
    """Every (command path, option) of the CLI."""
    import typer.main

    from lts_cli.cli import app

    def walk(command, path):  # type: ignore[no-untyped-def]
        for param in command.params:
            yield path, param
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    return list(walk(typer.main.get_command(app), ["lts"]))


def test_every_option_shows_its_default_or_says_it_has_none() -> None:
    missing = []
    for path, param in _options():
        if getattr(param, "is_flag", False) or param.param_type_name == "argument" or param.name == "help":
            continue
        if param.default is None and param.show_default in (None, True, ""):
            missing.append(f"{' '.join(path)} {param.opts[0]}")
    assert not missing, missing


def test_help_text_is_printed_whole(run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich markup must not eat bracketed words: every option's help text appears in --help as written."""
    import re

    import typer.rich_utils

    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", 2000)  # one line per option, so the text can be compared

    commands = {tuple(path) for path, _ in _options()}
    for path in commands:
        result = run_cli(*path[1:], "--help")
        assert result.exit_code == 0, path
        text = re.sub(r"[\s│]+", " ", result.stdout)
        assert "[default: ()]" not in text and "[]" not in text
        for p, param in _options():
            if tuple(p) == path and getattr(param, "help", None):
                assert " ".join(param.help.split()) in text, (path, param.help)


def test_root_help_names_the_workspace_and_the_variables(run_cli, lts_home: Path) -> None:
    text = run_cli("--help").stdout
    assert str(lts_home) in text and "LTS_HOME" in text and "LTS_DEBUG" in text


def test_shell_completion_offers_ids_and_names(lts_home: Path, run_cli, tmp_path: Path, fake_measure) -> None:
    config = tmp_path / "s.yaml"
    config.write_text(TINY_SEARCH)
    assert run_cli("search", "--config", str(config), "--name", "first-run", "--no-plots").exit_code == 0
    env = {**os.environ, "LTS_HOME": str(lts_home), "_LTS_COMPLETE": "complete_bash"}

    def complete(words: str) -> list[str]:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "lts")],
            env={**env, "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.stdout.split()

    assert complete("lts profile gpt2_a9") == [A_ID]
    measured = json.loads((lts_home / "runs" / "first-run" / "state.json").read_text())["records"][0]
    archid = Arch(**measured["arch"]).archid
    assert archid in complete(f"lts train {archid[:9]}")
    assert complete("lts search show fir") == ["first-run"]
    assert complete("lts search --resume fir") == ["first-run"]
    assert "--install-completion" in run_cli("--help").stdout


def test_piped_tables_are_not_wrapped_or_cut(lts_home: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lts_cli", "gallery", "list"],
        env={**os.environ, "LTS_HOME": str(lts_home), "COLUMNS": "60"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("gpt2_")]
    assert len(rows) == 20 and "…" not in done.stdout
    assert all(len(row.split()) == 6 for row in rows), rows[:3]


def test_an_empty_yaml_file_says_empty(run_cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing here yet\n")
    assert_user_error(run_cli("profile", str(empty)), f"{empty}: the file is empty")
    assert_user_error(run_cli("search", "--config", str(empty)), f"{empty}: the file is empty")


def test_lts_home_pointing_at_a_file(run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a_file = tmp_path / "home-file"
    a_file.write_text("")
    monkeypatch.setenv("LTS_HOME", str(a_file))
    assert_user_error(run_cli("gallery", "list"), f"the workspace {a_file} is a file, not a folder", "LTS_HOME")


def test_messages_fit_the_command(run_cli, lts_home: Path) -> None:
    train = run_cli("train", "gpt2_nothing_here")
    assert_user_error(train, "unknown architecture")
    assert "--arch" not in train.stderr
    export = run_cli("export", A_ID)
    assert_user_error(export, f"`lts train {A_ID}`", "--allow-untrained to use random weights")
    assert "to generate" not in export.stderr
    searched = Arch(n_layer=3, d_model=64, d_inner=64, n_head=2)  # not a gallery architecture: nothing to pull
    assert (
        run_cli(
            "profile", "--arch", "n_layer=3,d_model=64,d_inner=64,n_head=2", "--objectives", "onnx_memory"
        ).exit_code
        == 0
    )
    untrained = run_cli("export", searched.archid)
    assert_user_error(untrained, f"`lts train {searched.archid}` first", "--allow-untrained to use random weights")
