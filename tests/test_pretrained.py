"""The pre-trained gallery from the Hub, served offline by the real huggingface_hub code from a Hub cache
built here, and the workspace a user can see and tidy (models, exports, caches)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.conftest import HUB_COMMIT, HUB_REPO, assert_user_error, fake_hub_repo, gallery_model_files

A_ID = "gpt2_a9e3147996070fda25af4b39ed95b6a18d6d0402"  # 4/128/768/4
B_ID = "gpt2_80fabe4acddff0dc796e287588e40d86e79df4b2"  # 4/192/960/4


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def _config(arch_overrides: dict | None = None, model_id: str = A_ID) -> dict:
    from lts_cli.gallery import find

    a = find(model_id).arch
    config = {"model_type": "gpt2", "n_layer": a.n_layer, "n_embd": a.d_model, "n_inner": a.d_inner,
              "n_head": a.n_head, "vocab_size": a.vocab_size, "n_positions": a.n_positions}  # fmt: skip
    return {**config, **(arch_overrides or {})}


def _light_repo(cache: Path, tmp_path: Path, folders: dict[str, dict]) -> Path:
    """Config files and a stand-in weights file: enough for `pull`, which checks but does not load."""
    files = {}
    for model_id, config in folders.items():
        source = tmp_path / "src" / model_id
        source.mkdir(parents=True)
        (source / "config.json").write_text(json.dumps(config))
        (source / "model.safetensors").write_bytes(b"weights")
        files[f"{model_id}/config.json"] = source / "config.json"
        files[f"{model_id}/model.safetensors"] = source / "model.safetensors"
    return fake_hub_repo(cache, HUB_REPO, files)


def test_pull_checks_and_registers(run_cli, hub_cache: Path, tmp_path: Path, lts_home: Path) -> None:
    _light_repo(hub_cache, tmp_path, {A_ID: _config()})
    result = run_cli("gallery", "pull", "gpt2_a9e3", "--json")
    assert result.exit_code == 0, result.stderr
    (pulled,) = json.loads(result.stdout)
    assert pulled["id"] == A_ID and pulled["revision"] == HUB_COMMIT and pulled["tokenizer"] == "shipped"
    assert pulled["path"] == str(hub_cache / "models--microsoft--lts-gpt2-sm" / "snapshots" / HUB_COMMIT / A_ID)
    assert (lts_home / "pulled" / f"{A_ID}.json").is_file()
    listed = json.loads(run_cli("gallery", "list", "--json").stdout)
    mine = next(r for r in listed if r["id"] == A_ID)
    assert mine["local"] == {"trained": False, "pulled": True, "exports": []}
    assert "P" in run_cli("gallery", "list").stdout


def test_a_mismatched_config_is_refused_naming_the_field(run_cli, hub_cache: Path, tmp_path: Path, lts_home: Path):
    _light_repo(hub_cache, tmp_path, {A_ID: _config({"n_layer": 5})})
    assert_user_error(
        run_cli("gallery", "pull", A_ID), "config.json has n_layer 5", "gallery architecture has n_layer 4"
    )
    assert not (lts_home / "pulled").exists()


def test_not_downloaded_offline(run_cli, hub_cache: Path, tmp_path: Path) -> None:
    start = time.perf_counter()
    for ref in ("gpt2_a9e3", A_ID):  # no repository in the cache at all
        assert_user_error(
            run_cli("generate", ref, "hi"), "not downloaded", f"lts gallery pull {A_ID}", f"lts train {A_ID}"
        )
    _light_repo(hub_cache, tmp_path, {B_ID: _config(model_id=B_ID)})  # the repository, but another subfolder
    assert_user_error(run_cli("gallery", "pull", A_ID), "not downloaded", "HF_HUB_OFFLINE is set")
    assert_user_error(run_cli("export", A_ID), "not downloaded", "--allow-untrained")
    assert time.perf_counter() - start < 10


def test_pull_all_and_bad_usage(run_cli, hub_cache: Path, tmp_path: Path) -> None:
    assert_user_error(run_cli("gallery", "pull"), "or --all", code=2)
    assert_user_error(run_cli("gallery", "pull", A_ID, "--all"), "not both", code=2)
    _light_repo(hub_cache, tmp_path, {A_ID: _config(), B_ID: _config(model_id=B_ID)})
    assert_user_error(run_cli("gallery", "pull", "--all"), "not downloaded")  # 18 of 20 are not in the cache
    other = run_cli("gallery", "pull", A_ID, B_ID, "--repo", HUB_REPO, "--json")
    assert other.exit_code == 0 and len(json.loads(other.stdout)) == 2


def test_repo_from_the_environment(run_cli, hub_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "config.json"
    source.write_text(json.dumps(_config()))
    weights = tmp_path / "pytorch_model.bin"
    weights.write_bytes(b"weights")
    fake_hub_repo(hub_cache, "someone/mirror", {f"{A_ID}/config.json": source, f"{A_ID}/pytorch_model.bin": weights})
    monkeypatch.setenv("LTS_GALLERY_REPO", "someone/mirror")
    result = run_cli("gallery", "pull", A_ID, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["repo"] == "someone/mirror"
    assert json.loads(result.stdout)[0]["weights"] == "pytorch_model.bin"


# ---- the real thing: weights saved by transformers, generated from, exported -----------------


@pytest.fixture(scope="session")
def real_hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hub cache with the published repository's layout: A_ID as safetensors, B_ID as pytorch_model.bin,
    and, in a second repository, A_ID beside root tokenizer files."""
    from lts_cli.data import tokenizer

    root = tmp_path_factory.mktemp("hub")
    cache = root / "cache"
    files = gallery_model_files(root / "a", A_ID) | gallery_model_files(root / "b", B_ID, safetensors=False)
    fake_hub_repo(cache, HUB_REPO, files)
    tokenizer().save_pretrained(root / "tok")
    root_files = {p.name: p for p in (root / "tok").iterdir() if p.name in ("tokenizer.json", "tokenizer_config.json")}
    fake_hub_repo(cache, "someone/with-tokenizer", gallery_model_files(root / "c", A_ID) | root_files)
    return cache


@pytest.mark.slow
def test_pull_generate_export_offline(run_cli, real_hub: Path, lts_home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(real_hub))
    assert run_cli("gallery", "pull", "gpt2_a9e3").exit_code == 0
    streamed = run_cli("generate", "gpt2_a9e3", "ROMEO:", "--max-new-tokens", "8", "--seed", "1")
    assert streamed.exit_code == 0, streamed.stderr
    assert streamed.stdout.startswith("ROMEO:") and len(streamed.stdout) > len("ROMEO:\n")
    greedy = ["ROMEO:", "--greedy", "--max-new-tokens", "12", "--ignore-eos", "--json"]
    torch_out = json.loads(run_cli("generate", "gpt2_a9e3", *greedy).stdout)
    onnx = run_cli("generate", "gpt2_a9e3", *greedy, "--backend", "onnx")
    assert onnx.exit_code == 0, onnx.stderr
    assert json.loads(onnx.stdout)["texts"] == torch_out["texts"] and torch_out["source"] == "pulled"
    # The export goes to the workspace, never into the Hub cache.
    assert (lts_home / "exports" / A_ID / "onnx" / "export.json").is_file()
    int8 = run_cli("export", "gpt2_a9e3", "--quantize", "int8", "--json")
    assert int8.exit_code == 0, int8.stderr
    info = json.loads(int8.stdout)
    assert info["path"] == str(lts_home / "exports" / A_ID / "onnx-int8") and info["validation"]["int8_perplexity"] > 0
    assert not list(real_hub.rglob("onnx*"))
    # A .bin checkpoint loads too (transformers reads it with weights_only).
    assert run_cli("gallery", "pull", B_ID).exit_code == 0
    assert run_cli("generate", B_ID, "hi", "--max-new-tokens", "3").exit_code == 0


@pytest.mark.slow
def test_the_repository_tokenizer_is_used_when_there_is_one(run_cli, real_hub: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(real_hub))
    pulled = json.loads(run_cli("gallery", "pull", A_ID, "--repo", "someone/with-tokenizer", "--json").stdout)[0]
    assert pulled["tokenizer"] == "repository" and pulled["tokenizer_path"].endswith(HUB_COMMIT)
    from lts_cli.modeling import load

    loaded = load(A_ID)
    assert loaded.source == "pulled" and loaded.tokenizer("Hello world")["input_ids"] == [15496, 995]


@pytest.mark.slow
def test_models_list_and_rm_leave_the_hub_cache_alone(run_cli, real_hub: Path, lts_home: Path, monkeypatch) -> None:
    import shutil

    cache = lts_home.parent / "hub-copy"
    shutil.copytree(real_hub, cache, symlinks=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert run_cli("gallery", "pull", A_ID).exit_code == 0
    assert run_cli("export", A_ID).exit_code == 0
    rows = json.loads(run_cli("models", "list", "--json").stdout)
    (row,) = [r for r in rows if r["id"] == A_ID]
    assert row["source"] == "pulled" and row["size_bytes"] > 4 * 7_000_000 and len(row["exports"]) == 1
    assert "pulled from the Hub" in run_cli("models", "list").stdout
    shown = json.loads(run_cli("models", "show", "gpt2_a9e3", "--json").stdout)
    assert shown["detail"]["revision"] == HUB_COMMIT

    blobs = cache / "models--microsoft--lts-gpt2-sm" / "blobs"
    before = sorted(p.name for p in blobs.iterdir())
    assert_user_error(run_cli("models", "rm", A_ID), "add --yes", code=2)  # no terminal to ask on
    removed = run_cli("models", "rm", A_ID, "--yes", "--json")
    assert removed.exit_code == 0, removed.stderr
    assert sorted(p.name for p in blobs.iterdir()) == before  # the shared cache is untouched
    assert not (lts_home / "pulled" / f"{A_ID}.json").exists() and not (lts_home / "exports" / A_ID).exists()

    assert run_cli("gallery", "pull", A_ID).exit_code == 0
    assert run_cli("models", "rm", A_ID, "--hub-cache", "--yes").exit_code == 0
    left = sorted(p.name for p in blobs.iterdir())
    assert len(left) < len(before)  # A_ID's blobs are gone
    snapshot = cache / "models--microsoft--lts-gpt2-sm" / "snapshots" / HUB_COMMIT
    assert not (snapshot / A_ID).exists() and (snapshot / B_ID / "config.json").is_file()  # B_ID still loads


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
    from lts_cli import evaluation
    from tests.conftest import TINY_SEARCH, fake_measure

    monkeypatch.setattr(evaluation.Evaluator, "measure", fake_measure([]))
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


# ---- model folders follow the Hub's conventions ------------------------------------------------


@pytest.mark.slow
def test_a_trained_model_folder_samples_like_lts_in_a_plain_pipeline(trained) -> None:
    import transformers

    folder, metrics = trained
    card = (folder / "README.md").read_text()
    assert "pipeline_tag: text-generation" in card and f"{metrics['val_perplexity']:,.2f}" in card
    config = json.loads((folder / "generation_config.json").read_text())
    # lts's defaults (128 new tokens capped at half of this tiny model's 128 positions)
    assert (config["do_sample"], config["temperature"], config["top_p"], config["max_new_tokens"]) == (
        True, 0.8, 0.95, 64,
    )  # fmt: skip
    assert json.loads((folder / "tokenizer_config.json").read_text())["model_max_length"] == 128
    generate = transformers.pipeline("text-generation", str(folder))
    outputs = {generate("ROMEO:")[0]["generated_text"] for _ in range(3)}
    assert len(outputs) > 1  # sampling, not greedy


def test_online_the_model_is_pulled_first_saying_so(run_cli, hub_cache: Path, tmp_path: Path, monkeypatch) -> None:
    """With the Hub reachable (simulated: huggingface_hub's download is replaced by the files it would
    leave), `lts export ID` of a gallery id that is not pulled pulls it first and says so."""
    from huggingface_hub import constants

    from lts_cli import hub, pretrained

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    asked: list[str] = []
    monkeypatch.setattr(hub, "check_repo", lambda repo, repo_type="model", revision=None: asked.append(repo))
    real = pretrained._snapshot

    def download(repo, revision, patterns, local_only):  # type: ignore[no-untyped-def]
        if not local_only:
            _light_repo(hub_cache, tmp_path, {A_ID: _config()})
        return real(repo, revision, patterns, local_only=True)

    monkeypatch.setattr(pretrained, "_snapshot", download)
    exported = run_cli("export", A_ID)  # not pulled: pulled first, then loaded (here: stand-in weights)
    assert f"downloading {A_ID} from {HUB_REPO}" in exported.stderr and asked == [HUB_REPO]
    assert_user_error(exported, "cannot load the weights")
    again = run_cli("gallery", "pull", A_ID)  # now in the cache: no second download
    assert again.exit_code == 0 and "downloading" not in again.stderr and asked == [HUB_REPO]
