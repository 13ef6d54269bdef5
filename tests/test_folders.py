"""lts removes only files it wrote (issue 18, class 1): manifests, replacing a folder, removing one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lts_cli import folders, measurer, workspace
from tests.conftest import (
    TINY_ARCH,
    TINY_SEARCH,
    assert_user_error,
    fake_measure,
    install,
)
from tests.conftest import fake_measure as make


def staged(target: Path, files: dict[str, str], marker: str = "export.json", notes: list[str] | None = None) -> None:
    with folders.staged_folder(target, marker, on_note=(notes.append if notes is not None else None)) as tmp:
        for name, text in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(text)


def test_a_staged_folder_records_what_it_wrote(tmp_path: Path) -> None:
    staged(tmp_path / "out", {"export.json": "{}", "model.onnx": "x", "sub/a.txt": "a"})
    assert folders.read_manifest(tmp_path / "out") == ["export.json", "model.onnx", "sub/a.txt"]


def test_replacing_keeps_a_users_file_and_says_so(tmp_path: Path) -> None:
    target = tmp_path / "out"
    staged(target, {"export.json": "1", "model.onnx": "old", "old-only.bin": "x"})
    (target / "notes.txt").write_text("mine")
    (target / "mine").mkdir()
    (target / "mine" / "data.csv").write_text("1,2")
    notes: list[str] = []
    staged(target, {"export.json": "2", "model.onnx": "new"}, notes=notes)
    assert (target / "notes.txt").read_text() == "mine" and (target / "mine" / "data.csv").read_text() == "1,2"
    assert (target / "model.onnx").read_text() == "new" and not (target / "old-only.bin").exists()
    assert sorted(notes) == [f"kept mine/data.csv in {target} (not written by lts)",
                             f"kept notes.txt in {target} (not written by lts)"]  # fmt: skip
    assert not list(tmp_path.glob(".out.*"))  # nothing left over beside it
    assert "notes.txt" not in folders.read_manifest(target)  # still the user's, next time too


def test_a_users_file_named_like_a_new_one_stays_in_the_old_folder(tmp_path: Path) -> None:
    target = tmp_path / "out"
    staged(target, {"export.json": "1"})
    (target / "README.md").write_text("my readme")
    notes: list[str] = []
    staged(target, {"export.json": "2", "README.md": "lts's card"}, notes=notes)
    (old,) = tmp_path.glob(".out.old-*")
    assert (old / "README.md").read_text() == "my readme" and (target / "README.md").read_text() == "lts's card"
    assert len(notes) == 1 and "has a file of that name" in notes[0] and str(old) in notes[0]


def test_a_folder_from_before_manifests_falls_back_to_known_names(tmp_path: Path) -> None:
    old = tmp_path / "model"
    old.mkdir()
    for name in ("metrics.json", "config.json", "model.safetensors", "arch.json", "notes.txt"):
        (old / name).write_text("x")
    export = old / "onnx"  # an export made before manifests, inside it
    export.mkdir()
    (export / "export.json").write_text("{}")
    (export / "model.onnx").write_text("x")
    (export / "results.txt").write_text("mine")
    plan = folders.removal_plan(old)
    assert sorted(p.name for p in plan.kept) == ["notes.txt", "results.txt"]
    assert sorted(p.name for p in plan.files) == ["arch.json", "config.json", "export.json", "metrics.json",
                                                 "model.onnx", "model.safetensors"]  # fmt: skip
    assert plan.nested == [export]
    kept = folders.remove(plan)
    assert sorted(p.name for p in old.rglob("*") if p.is_file()) == ["notes.txt", "results.txt"]
    assert len(kept) == 2


def test_a_damaged_manifest_keeps_everything_it_cannot_vouch_for(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / folders.MANIFEST).write_text("{not json")
    (folder / "config.yaml").write_text("x")  # a run's marker: its known names apply
    (folder / "state.json").write_text("{}")
    (folder / "mine.py").write_text("print()")
    folders.remove_folder(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["mine.py"]


# ---- through the commands -------------------------------------------------------------------------


@pytest.mark.slow  # exports a model
def test_export_force_keeps_a_users_notes(run_cli, tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "exported"
    assert run_cli("export", str(tiny_model), "-o", str(out)).exit_code == 0
    (out / "notes.txt").write_text("notes")
    again = run_cli("export", str(tiny_model), "-o", str(out), "--force")
    assert again.exit_code == 0, again.stderr
    assert (out / "notes.txt").read_text() == "notes" and (out / "export.json").is_file()
    assert f"kept notes.txt in {out} (not written by lts)" in again.stderr


@pytest.mark.slow  # exports a model
def test_models_rm_lists_everything_and_keeps_a_users_file(run_cli, tiny_model: Path, lts_home: Path) -> None:
    model = install(tiny_model, lts_home, "tiny")
    assert run_cli("export", "tiny").exit_code == 0
    (model / "notes.txt").write_text("mine")
    (model / "onnx" / "bench.csv").write_text("mine too")
    result = run_cli("models", "rm", "tiny", "--yes")
    assert result.exit_code == 0, result.stderr
    assert (
        f"{model}: " in result.stderr
        and "MiB" in result.stderr
        and f"with the export {model / 'onnx'}" in result.stderr
    )
    assert f"keeps {model / 'notes.txt'} (not written by lts)" in result.stderr
    assert sorted(str(p.relative_to(model)) for p in model.rglob("*") if p.is_file()) == ["notes.txt", "onnx/bench.csv"]


def test_search_rm_keeps_a_users_file(run_cli, lts_home: Path, tmp_path: Path, monkeypatch) -> None:
    from lts_cli import measurer

    monkeypatch.setattr(measurer, "measure", fake_measure([]))
    config = tmp_path / "s.yaml"
    config.write_text(TINY_SEARCH)
    assert run_cli("search", "--config", str(config), "--name", "r", "--no-plots").exit_code == 0
    run = lts_home / "runs" / "r"
    assert "results.csv" in folders.read_manifest(run) and "summary.json" in folders.read_manifest(run)
    (run / "analysis.ipynb").write_text("{}")
    removed = run_cli("search", "rm", "r", "--yes")
    assert removed.exit_code == 0, removed.stderr
    assert [p.name for p in run.iterdir()] == ["analysis.ipynb"] and "kept analysis.ipynb" in removed.stderr
    assert_user_error(run_cli("search", "rm", "r", "--yes"), "no search run named 'r'")


def test_cache_prune_keeps_a_users_file_in_an_export_it_removes(run_cli, lts_home: Path) -> None:
    export = lts_home / workspace.EXPORTS / "gpt2_a9e3147996070fda25af4b39ed95b6a18d6d0402" / "onnx"
    export.mkdir(parents=True)
    (export / "export.json").write_text(json.dumps({"source_kind": "pulled"}))  # its pulled model is gone
    (export / "model.onnx").write_bytes(b"x" * 10)
    folders.write_manifest(export)
    (export / "notes.txt").write_text("mine")
    pruned = run_cli("cache", "prune", "--yes")
    assert pruned.exit_code == 0, pruned.stderr
    assert [p.name for p in export.iterdir()] == ["notes.txt"] and "kept notes.txt" in pruned.stderr


def user_folder(path: Path) -> dict[str, bytes]:
    """A folder a user made, with files lts never wrote; returns its contents to compare later."""
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("my notes")
    (path / "sub").mkdir()
    (path / "sub" / "data.bin").write_bytes(b"\x00\x01" * 100)
    return snapshot(path)


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


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
