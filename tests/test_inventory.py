"""What the workspace holds and removing it: models, search runs, caches (lts deletes only what it made)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests.conftest import assert_user_error

A_ID = "gpt2_a9e3147996070fda25af4b39ed95b6a18d6d0402"


def test_rm_refuses_what_lts_did_not_make(run_cli, lts_home: Path) -> None:
    mine = lts_home / "models" / "my-hf-model"
    mine.mkdir(parents=True)
    (mine / "config.json").write_text("{}")
    listed = json.loads(run_cli("models", "list", "--json").stdout)
    assert [(m["id"], m["source"]) for m in listed] == [("my-hf-model", "folder")]
    assert_user_error(run_cli("models", "rm", "my-hf-model", "--yes"), "not made by lts", "nothing was touched")
    assert (mine / "config.json").is_file()
    assert_user_error(run_cli("models", "rm", "nothing-like-it", "--yes"), "no model 'nothing-like-it'")


def test_search_rm(run_cli, lts_home: Path, tmp_path: Path, monkeypatch) -> None:
    from lts_cli import measurer
    from tests.conftest import TINY_SEARCH, fake_measure

    monkeypatch.setattr(measurer, "measure", fake_measure([]))
    config = tmp_path / "s.yaml"
    config.write_text(TINY_SEARCH)
    assert run_cli("search", "--config", str(config), "--name", "old", "--no-plots").exit_code == 0
    assert run_cli("search", "rm", "old", "--yes").exit_code == 0
    assert not (lts_home / "runs" / "old").exists()
    assert_user_error(run_cli("search", "rm", "old", "--yes"), "no search run named 'old'")


def test_cache_prune_keeps_what_is_referenced(run_cli, lts_home: Path) -> None:
    def export_folder(path: Path, kind: str) -> None:
        path.mkdir(parents=True)
        (path / "export.json").write_text(json.dumps({"source": path.parent.name, "source_kind": kind}))
        (path / "model.onnx").write_bytes(b"x" * 1000)

    export_folder(lts_home / "models" / "trained-one" / "onnx", "workspace")  # beside its model
    (lts_home / "models" / "trained-one" / "metrics.json").write_text("{}")
    export_folder(lts_home / "exports" / A_ID / "onnx", "pulled")  # its pulled model is gone
    export_folder(lts_home / "exports" / "gpt2_abc-untrained" / "onnx", "untrained")  # an architecture: kept
    for key in ("needed", "stale"):
        folder = lts_home / "tokens" / key
        folder.mkdir(parents=True)
        (folder / "meta.json").write_text(json.dumps({"corpus": key, "key": f"corpus-{key}", "tokens": {"train": 9}}))
    work = lts_home / "models" / ".half.training"
    work.mkdir()
    (work / "train.json").write_text(json.dumps({"corpus": "corpus-needed"}))
    old_tmp, new_tmp = lts_home / "runs" / ".r.tmp-abc", lts_home / "runs" / ".s.tmp-def"
    old_tmp.mkdir(parents=True)
    new_tmp.mkdir()
    os.utime(old_tmp, (time.time() - 7200, time.time() - 7200))

    report = json.loads(run_cli("cache", "--json").stdout)
    expected = {str(lts_home / "tokens" / "stale"), str(lts_home / "exports" / A_ID / "onnx"), str(old_tmp)}
    assert set(report["prunable"]) == expected
    assert len(report["exports"]) == 3 and report["measurements"]["count"] == 0
    assert_user_error(run_cli("cache", "prune"), "add --yes", code=2)
    pruned = json.loads(run_cli("cache", "prune", "--yes", "--json").stdout)
    assert set(pruned["removed"]) == expected
    for kept in ("models/trained-one/onnx", "exports/gpt2_abc-untrained/onnx", "tokens/needed", "runs/.s.tmp-def"):
        assert (lts_home / kept).exists(), kept
    assert not any(Path(p).exists() for p in expected)


def test_what_a_running_command_uses_is_left_alone(run_cli, lts_home: Path) -> None:
    """Issue 18: `cache prune` skips what a running command holds (a proxy's token cache), `models rm`
    and `search rm` refuse; a lock a killed process held goes with it (the kernel's flock)."""
    from lts_cli import workspace

    tokens = lts_home / "tokens" / "abc"
    tokens.mkdir(parents=True)
    (tokens / "meta.json").write_text(json.dumps({"corpus": "c", "key": "k", "tokens": {"train": 9}}))
    model = lts_home / "models" / "m"
    model.mkdir(parents=True)
    (model / "metrics.json").write_text("{}")
    run = lts_home / "runs" / "r"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("generations: 1\n")
    with workspace.in_use(tokens, model, run):
        pruned = run_cli("cache", "prune", "--yes")
        assert pruned.exit_code == 0 and f"kept {tokens}: in use by a running lts command" in pruned.stderr
        assert tokens.is_dir()
        assert_user_error(run_cli("models", "rm", "m", "--yes"), "in use by a running lts command")
        assert_user_error(run_cli("search", "rm", "r", "--yes"), "'r' is running")
    assert run_cli("cache", "prune", "--yes").exit_code == 0 and not tokens.exists()
    assert run_cli("models", "rm", "m", "--yes").exit_code == 0 and not model.exists()


def test_a_killed_command_releases_what_it_held(lts_home: Path) -> None:
    import subprocess
    import sys

    from lts_cli import workspace

    held = lts_home / "tokens" / "abc"
    held.mkdir(parents=True)
    code = (
        "import sys, time\nfrom pathlib import Path\nfrom lts_cli import workspace\n"
        f"with workspace.in_use(Path({str(held)!r})):\n    print('held', flush=True)\n    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "LTS_HOME": str(lts_home)})  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        assert workspace.busy(held)
    finally:
        proc.kill()
        proc.wait()
    assert not workspace.busy(held)
