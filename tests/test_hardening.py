"""Issue 8, class by class: nothing a user owns is deleted, interrupted jobs resume, usage errors exit 2
naming the flag, output is runnable and honest. Each test names the item it covers."""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lts_cli import measurer
from lts_cli.errors import LtsError
from lts_cli.space import Arch
from lts_cli.store import SCHEMA_VERSION, Store
from lts_cli.views import Event
from tests.conftest import TINY, TINY_ARCH, TINY_FAST, TINY_SEARCH, assert_user_error, install, measurement
from tests.conftest import fake_measure as make

A_ID = "gpt2_a9e3147996070fda25af4b39ed95b6a18d6d0402"


def user_folder(path: Path) -> dict[str, bytes]:
    """A folder a user made, with files lts never wrote; returns its contents to compare later."""
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("my notes")
    (path / "sub").mkdir()
    (path / "sub" / "data.bin").write_bytes(b"\x00\x01" * 100)
    return snapshot(path)


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# ---- 1. lts deletes only what it can prove it created ----------------------------------------


@pytest.mark.slow  # builds and exports a model with transformers
def test_export_force_never_deletes_a_folder_lts_did_not_make(run_cli, tiny_model: Path, tmp_path: Path) -> None:
    mine = tmp_path / "my-folder"
    before = user_folder(mine)
    for args in ([], ["--force"]):
        result = run_cli("export", str(tiny_model), "-o", str(mine), *args)
        assert_user_error(result, "is not an lts export", "nothing was touched")
        assert "--force" not in result.stderr
        assert snapshot(mine) == before
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert_user_error(run_cli("export", str(tiny_model), "-o", str(a_file)), "is a file")

    # An empty folder is simply used; an earlier export is replaced with --force only.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli("export", str(tiny_model), "-o", str(empty)).exit_code == 0
    assert (empty / "export.json").is_file()
    assert_user_error(run_cli("export", str(tiny_model), "-o", str(empty)), "holds an lts export already", "--force")
    (empty / "stale.txt").write_text("a file lts did not write")
    replaced = run_cli("export", str(tiny_model), "-o", str(empty), "--force")
    assert replaced.exit_code == 0 and "kept stale.txt" in replaced.stderr  # issue 18: kept, and said
    assert (empty / "stale.txt").exists() and (empty / "export.json").is_file()


def test_training_never_replaces_or_clears_a_folder_lts_did_not_make(run_cli, lts_home: Path, tmp_path: Path) -> None:
    arch = tmp_path / "tiny.json"
    arch.write_text(json.dumps(TINY_ARCH))
    mine = lts_home / "models" / "mine"
    before = user_folder(mine)
    for args in ([], ["--restart"]):
        assert_user_error(
            run_cli("train", str(arch), "--seq-len", "64", "--name", "mine", *args), "not a model trained"
        )
        assert snapshot(mine) == before
    work = lts_home / "models" / ".other.training"
    before_work = user_folder(work)
    assert_user_error(
        run_cli("train", str(arch), "--seq-len", "64", "--name", "other", "--restart"), "not an lts training"
    )
    assert snapshot(work) == before_work


def test_search_only_prunes_pareto_files_it_wrote(run_cli, lts_home: Path, tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "s.yaml"
    config.write_text(TINY_SEARCH)
    calls: list[str] = []
    monkeypatch.setattr(measurer, "measure", make(calls, interrupt_after=4))  # in generation 2
    assert run_cli("search", "--config", str(config), "--name", "r", "--no-plots").exit_code == 130
    pareto = lts_home / "runs" / "r" / "pareto"
    (pareto / "my-favourite.json").write_text("{}")
    monkeypatch.setattr(measurer, "measure", make(calls))
    assert run_cli("search", "--resume", "r", "--no-plots").exit_code == 0  # rewrites pareto/
    assert (pareto / "my-favourite.json").read_text() == "{}"


# ---- 2. training resumes from the newest complete checkpoint ----------------------------------


@pytest.mark.slow
def test_a_partial_checkpoint_is_skipped_and_training_resumes_from_the_previous_one(
    lts_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_tokens: None
) -> None:
    import transformers

    from lts_cli import training
    from lts_cli.checkpoints import checkpoint_problem
    from lts_cli.corpus import embedded_corpus
    from lts_cli.references import architecture as resolve
    from lts_cli.training import TrainConfig

    arch = tmp_path / "tiny.json"
    arch.write_text(json.dumps(TINY_ARCH))
    target, corpus = resolve(str(arch)), embedded_corpus()
    config = TrainConfig(
        max_steps=12, batch_size=4, seq_len=32, warmup_steps=2, eval_every=100, save_every=5, eval_batches=2
    )
    straight = training.train(target, config, corpus, name="straight")

    # Killed while the Trainer writes checkpoint-10: the weights are written, the trainer state is not.
    real_save = transformers.Trainer._save_rng_state

    def killed_while_saving(self, output_dir):  # type: ignore[no-untyped-def]
        if output_dir.endswith("checkpoint-10"):
            raise KeyboardInterrupt
        return real_save(self, output_dir)

    monkeypatch.setattr(transformers.Trainer, "_save_rng_state", killed_while_saving)
    with pytest.raises(KeyboardInterrupt):
        training.train(target, config, corpus, name="killed")
    monkeypatch.setattr(transformers.Trainer, "_save_rng_state", real_save)
    work = lts_home / "models" / ".killed.training"
    assert checkpoint_problem(work / "checkpoint-5") is None
    assert "interrupted while saving" in (checkpoint_problem(work / "checkpoint-10") or "")

    events: list[Event] = []
    resumed = training.train(target, config, corpus, name="killed", on_event=events.append)
    skipped = [e.data for e in events if e.kind == "checkpoint-skipped"]
    assert [(d["checkpoint"], d["resume_from"].name) for d in skipped] == [("checkpoint-10", "checkpoint-5")]
    assert resumed.metrics["resumed_from_step"] == 5
    assert resumed.metrics["val_loss"] == pytest.approx(straight.metrics["val_loss"], abs=1e-4)

    # Issue 18: a checkpoint of the right size whose weights are random bytes is skipped the same way.
    def stop_at_eleven(event: Event) -> None:
        if event.kind == "step" and event.data == 11:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        training.train(target, config, corpus, name="corrupt", on_event=stop_at_eleven)
    weights = lts_home / "models" / ".corrupt.training" / "checkpoint-10" / "model.safetensors"
    weights.write_bytes(os.urandom(weights.stat().st_size))
    events.clear()
    again = training.train(target, config, corpus, name="corrupt", on_event=events.append)
    skipped = [e.data for e in events if e.kind == "checkpoint-skipped"]
    assert [(d["checkpoint"], d["resume_from"].name) for d in skipped] == [("checkpoint-10", "checkpoint-5")]
    assert "model.safetensors does not read" in skipped[0]["problem"]
    assert again.metrics["val_loss"] == pytest.approx(straight.metrics["val_loss"], abs=1e-4)


def test_checkpoint_completeness(tmp_path: Path) -> None:
    from lts_cli.checkpoints import checkpoint_problem, record_checkpoint

    folder = tmp_path / "checkpoint-5"
    folder.mkdir()
    assert checkpoint_problem(folder) == "empty"
    (folder / "training_args.txt").write_bytes(b"w" * 1000)
    (folder / "trainer_state.json").write_text("{}")
    assert "no lts-checkpoint.json" in (checkpoint_problem(folder) or "")
    record_checkpoint(folder)
    assert checkpoint_problem(folder) is None
    (folder / "trainer_state.json").write_text("{x")  # the same size, not JSON
    assert "trainer_state.json does not read" in (checkpoint_problem(folder) or "")
    (folder / "trainer_state.json").write_text("{}")
    (folder / "training_args.txt").write_bytes(b"w" * 10)
    assert checkpoint_problem(folder) == "training_args.txt is truncated (10 of 1,000 bytes)"
    (folder / "training_args.txt").unlink()
    assert checkpoint_problem(folder) == "training_args.txt is missing"
    (folder / "lts-checkpoint.json").write_text("{not json")
    assert checkpoint_problem(folder) == "lts-checkpoint.json is damaged"


# ---- 3. a database with damaged contents, or an older schema ----------------------------------


ARCH = Arch(n_layer=2, d_model=64, d_inner=128, n_head=2)


def _filled(path: Path) -> None:
    made = measurement(ARCH, 0.5, fingerprint={"cpu": "x"})
    with Store(path) as store:
        store.put_arch(ARCH, "test")
        store.put_measurement("k1", ARCH.archid, made.settings, {"cpu": "x"}, made.to_dict())


def _unchanged(path: Path, action) -> str:  # type: ignore[no-untyped-def]
    before = path.read_bytes()
    with pytest.raises(LtsError) as info:
        action()
    assert path.read_bytes() == before
    message = str(info.value)
    assert str(path) in message and "move it aside" in message
    return message


def test_an_arch_row_that_does_not_parse_is_named_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "lts.db"
    _filled(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE archs SET config = '[1, 2]'")
    store = Store(path)
    assert "table archs" in _unchanged(path, lambda: store.find_archs("gpt2_"))


def test_a_dropped_table_is_named(tmp_path: Path, run_cli, lts_home: Path) -> None:
    lts_home.mkdir()
    path = lts_home / "lts.db"
    _filled(path)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE measurements")
    assert "table measurements is missing" in _unchanged(path, lambda: Store(path))
    assert_user_error(run_cli("gallery", "list"), str(path), "table measurements is missing", "move it aside")


V1_SCHEMA = """
CREATE TABLE archs (archid TEXT PRIMARY KEY, config TEXT NOT NULL, source TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE measurements (key TEXT PRIMARY KEY, archid TEXT NOT NULL, settings TEXT NOT NULL,
    fingerprint TEXT NOT NULL, result TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX measurements_archid ON measurements (archid);
PRAGMA user_version = 1;
"""


def test_an_older_schema_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "lts.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_SCHEMA)
        made = measurement(ARCH, 1.5)
        conn.execute("INSERT INTO measurements VALUES ('k1', 'a', '{}', '{}', ?, 0)", (json.dumps(made.to_dict()),))
    with Store(path) as store:
        assert store.get_measurement("k1") == made
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(measurements)")}
        assert "measurements_machine" in indexes


def test_a_failed_migration_leaves_the_file_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lts_cli import store

    path = tmp_path / "lts.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_SCHEMA)
    monkeypatch.setitem(
        store.MIGRATIONS, 1, "CREATE INDEX x ON measurements (archid); CREATE INDEX broken ON nowhere (x)"
    )
    with pytest.raises(LtsError, match=r"could not upgrade .* from schema 1.*left unchanged"):
        Store(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert "x" not in {row[1] for row in conn.execute("PRAGMA index_list(measurements)")}


# ---- 4. a search that evaluated nothing leaves no folder behind -------------------------------


@pytest.fixture
def fake_measure(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(measurer, "measure", make(calls))
    return calls


def test_an_impossible_constraint_leaves_no_run_folder(run_cli, lts_home: Path) -> None:
    result = run_cli("search", "--min-params", "1e6", "--max-params", "1.0001e6", "--name", "narrow")
    assert_user_error(result, "--min-params/--max-params", code=2)
    assert not (lts_home / "runs" / "narrow").exists()
    assert "narrow" not in run_cli("search", "list").stdout


def test_a_search_that_fails_before_evaluating_anything_frees_its_name(
    run_cli, lts_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "s.yaml"
    config.write_text(TINY_SEARCH)

    def failing(arch, settings, kind, fingerprint, progress=None):  # type: ignore[no-untyped-def]
        raise LtsError("the measuring machine is on fire")

    monkeypatch.setattr(measurer, "measure", failing)
    assert_user_error(run_cli("search", "--config", str(config), "--name", "n"), "on fire")
    assert not (lts_home / "runs" / "n").exists()
    monkeypatch.setattr(measurer, "measure", make([]))
    done = run_cli("search", "--config", str(config), "--name", "n", "--no-plots")
    assert done.exit_code == 0, done.stderr


# ---- 5. suggested commands run as printed -----------------------------------------------------


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


# ---- 6, 7. generation: never fewer tokens in silence, nothing on stdout when it fails ----------


@pytest.mark.slow  # builds and exports a model with transformers
@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_generation_says_when_the_context_cuts_it_short(run_cli, tiny_model: Path, tmp_path: Path, backend) -> None:
    model = tmp_path / "model"
    import shutil

    shutil.copytree(tiny_model, model)
    prompt = "word " * 100  # 100 tokens of a 128-token context
    result = run_cli("generate", str(model), prompt, "--max-new-tokens", "50", "--greedy", "--ignore-eos",
                     "--backend", backend, "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    room = 128 - data["prompt_tokens"]
    assert room < 50 and data["new_tokens"] == data["max_new_tokens"] == room and data["requested_new_tokens"] == 50
    assert f"leaves room for {room} of the 50 new tokens" in result.stderr


@pytest.mark.slow  # builds and exports a model with transformers
@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_a_refused_prompt_prints_nothing_on_stdout(run_cli, tiny_model: Path, tmp_path: Path, backend) -> None:
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    result = run_cli("generate", str(model), "word " * 200, "--backend", backend)
    assert_user_error(result, "the model's context is 128", "at most 127 tokens")
    assert result.stdout == ""
    assert not (model / "onnx").exists() and "exporting" not in result.stderr  # refused before any export


# ---- 8, 9. usage errors: exit 2, the flag named with its valid range ---------------------------


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


# ---- 10-13. help, completion, piped output ----------------------------------------------------


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


# ---- 14. messages -----------------------------------------------------------------------------


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


@pytest.mark.slow  # builds and exports a model with transformers
def test_an_onnx_folder_given_to_the_torch_backend(run_cli, tiny_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "onnx"
    assert run_cli("export", str(tiny_model), "-o", str(folder)).exit_code == 0
    assert_user_error(run_cli("generate", str(folder), "hi"), "ONNX export", "--backend onnx")


# ---- 15. the Hub: fast offline answers, local errors stay local --------------------------------


def test_an_unknown_model_name_fails_fast_offline(run_cli) -> None:
    start = time.perf_counter()
    result = run_cli("generate", "nobody/no-such-model", "hi")
    assert_user_error(result, "HF_HUB_OFFLINE is set", "nor in the local Hugging Face cache")
    assert time.perf_counter() - start < 5


def test_an_unreachable_hub_fails_fast(run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # as read when huggingface_hub was imported
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    start = time.perf_counter()
    assert_user_error(run_cli("generate", "nobody/no-such-model", "hi"), "Hugging Face Hub is unreachable")
    assert time.perf_counter() - start < 5


def test_local_errors_are_not_reported_as_hub_errors(run_cli, tmp_path: Path) -> None:
    short = run_cli("generate", "gpt2_", "hi")  # a prefix needs 4 hex digits; never a Hub id
    assert_user_error(short, "unknown architecture 'gpt2_'", "at least 4 hex digits")
    assert "Hub" not in short.stderr
    broken = tmp_path / "arch.yaml"
    broken.write_text("n_layer: [2\n")
    result = run_cli("generate", str(broken), "hi")
    assert_user_error(result, "invalid YAML at line")
    assert "Hub" not in result.stderr


# ---- 16. LTS_DEBUG=1 keeps the cause -----------------------------------------------------------


@pytest.mark.slow  # builds and exports a model with transformers
def test_the_cause_is_kept_for_lts_debug(tiny_model: Path, tmp_path: Path, lts_home: Path) -> None:
    model = install(tiny_model, lts_home, "damaged")
    (model / "model.safetensors").write_bytes(b"\x00" * 64)
    cmd = [sys.executable, "-m", "lts_cli", "generate", str(model), "hi"]
    env = {**os.environ, "LTS_HOME": str(lts_home), "LTS_DEBUG": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode != 0
    assert "The above exception was the direct cause of the following exception" in done.stderr
    assert "is not a readable safetensors file" in done.stderr
