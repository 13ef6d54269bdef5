"""The published gallery models and Hub models as they really are (issue 17), served offline by the real
huggingface_hub code from Hub caches laid out like the real repositories (tests/hubfakes.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lts_cli.gallery import find
from lts_cli.weights import gpt2_shapes
from tests.conftest import assert_user_error
from tests.hubfakes import (
    GALLERY_REPO,
    HUB_COMMIT,
    cache_repo,
    gpt2_like_repo,
    published_config,
    published_repo,
    save_bin,
    state_dict,
    tokenizer_files,
    with_legacy_buffers,
    write_safetensors,
)

A_ID = "gpt2_a9e3147996070fda25af4b39ed95b6a18d6d0402"  # the table: 4/128/768/4
B_ID = "gpt2_80fabe4acddff0dc796e287588e40d86e79df4b2"  # the table: 4/192/960/4


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def published_shapes(n_layer: int, width: int = 768) -> dict[str, tuple[int, ...]]:
    """The tensors of a published checkpoint (GPT-2-small widths), as safetensors would name them."""
    from lts_cli.space import Arch

    return gpt2_shapes(Arch(n_layer, width, 4 * width, 12))


def light_repo(cache: Path, tmp_path: Path, folders: dict[str, tuple[bytes, dict]], root: bool = True) -> Path:
    """config.json and a sparse (instant) safetensors file per subfolder, and the root tokenizer files."""
    files: dict = tokenizer_files(tmp_path / "tok") if root else {}
    for model_id, (config, shapes) in folders.items():
        (tmp_path / model_id).mkdir(parents=True, exist_ok=True)
        files[f"{model_id}/config.json"] = config
        files[f"{model_id}/model.safetensors"] = write_safetensors(tmp_path / model_id / "model.safetensors", shapes)
    return cache_repo(cache, GALLERY_REPO, files)


def test_a_published_checkpoint_is_pulled_as_its_config_says(run_cli, hub_cache: Path, tmp_path: Path, lts_home):
    light_repo(hub_cache, tmp_path, {A_ID: (published_config(4), published_shapes(4))})
    result = run_cli("gallery", "pull", "gpt2_a9e3")
    assert result.exit_code == 0, result.stderr
    difference = (
        "the published checkpoint is n_layer 4, n_embd 768, n_inner 3072, n_head 12; "
        "the gallery table lists d_model 128, d_inner 768, n_head 4"
    )
    assert result.stderr.count(difference) == 1
    assert "n_embd 768" in result.stdout and "its own tokenizer files" in result.stdout
    shown = json.loads(run_cli("models", "show", "gpt2_a9e3", "--json").stdout)
    assert shown["config"]["n_embd"] == 768 and shown["arch"]["d_model"] == 768
    # 4 x (12 x 768^2 + 13 x 768) + 2 x 768, counted by hand: GPT-2 small's blocks, 4 of them.
    assert shown["non_embedding_params"] == 4 * (12 * 768**2 + 13 * 768) + 2 * 768 == 28_353_024
    assert shown["detail"]["published_as"] == A_ID and shown["detail"]["differences"] == difference
    listed = json.loads(run_cli("models", "list", "--json").stdout)
    assert [(m["id"], m["config"]["n_embd"]) for m in listed] == [(A_ID, 768)]
    text = run_cli("models", "show", A_ID).stdout
    assert [line.split()[0] for line in text.splitlines()].count("path") == 1 and "n_embd 768" in text
    # profile of the gallery id measures the table's architecture, and says where the checkpoint's is
    profiled = run_cli("profile", "gpt2_a9e3", "--objectives", "non_embedding_params", "--json")
    assert json.loads(profiled.stdout)["arch"]["d_model"] == 128
    assert "the pulled checkpoint is L4 d768 ff3072 h12" in profiled.stderr
    checkpoint = run_cli("profile", shown["path"], "--objectives", "non_embedding_params", "--json")
    assert json.loads(checkpoint.stdout)["objectives"]["non_embedding_params"] == 28_353_024


def test_a_checkpoint_of_the_table_architecture_pulls_without_a_note(run_cli, hub_cache: Path, tmp_path: Path):
    a = find(A_ID).arch
    config = published_config(a.n_layer, a.d_model, a.n_head, a.d_inner)
    light_repo(hub_cache, tmp_path, {A_ID: (config, gpt2_shapes(a))}, root=False)
    result = run_cli("gallery", "pull", A_ID, "--json")
    assert result.exit_code == 0, result.stderr
    (pulled,) = json.loads(result.stdout)
    assert pulled["revision"] == HUB_COMMIT and pulled["differences"] is None and "checkpoint" not in result.stderr
    assert pulled["tokenizer"] == "lts's GPT-2 tokenizer (it has no tokenizer files)"
    assert pulled["path"] == str(hub_cache / "models--microsoft--lts-gpt2-sm" / "snapshots" / HUB_COMMIT / A_ID)
    mine = next(r for r in json.loads(run_cli("gallery", "list", "--json").stdout) if r["id"] == A_ID)
    assert mine["local"] == {"trained": False, "pulled": True, "exports": []}


@pytest.mark.parametrize(
    ("config", "shapes", "fragments"),
    [
        # config.json says 4 layers, the file holds 3
        (published_config(4), published_shapes(3), ["has no weights for transformer.h.3.*", "3 layer(s) in the file"]),
        # a width that is not the config's
        (published_config(2), published_shapes(2, width=576),
         ["transformer.wte.weight is [50257, 576]", "needs [50257, 768]"]),
        # a tensor no GPT-2 has
        (published_config(1), {**published_shapes(1), "transformer.h.0.adapter.weight": (8, 8)},
         ["transformer.h.0.adapter.weight"]),
        # a config.json that is not a GPT-2
        (b'{"model_type": "llama", "hidden_size": 64}', published_shapes(1), ["'llama' model", "GPT-2 only"]),
    ],
    ids=["fewer-layers", "other-width", "unknown-tensor", "not-gpt2"],
)  # fmt: skip
def test_weights_that_do_not_fill_the_model_are_refused_at_pull(
    run_cli, hub_cache: Path, tmp_path: Path, lts_home: Path, config: bytes, shapes: dict, fragments: list[str]
) -> None:
    light_repo(hub_cache, tmp_path, {A_ID: (config, shapes)})
    assert_user_error(run_cli("gallery", "pull", A_ID), *fragments)
    assert not (lts_home / "pulled").exists()


def test_a_pickle_that_is_not_weights_is_refused_and_never_run(run_cli, hub_cache: Path, tmp_path: Path, lts_home):
    import torch

    marker = tmp_path / "EXECUTED"

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (Path.touch, (marker,))

    evil = tmp_path / "evil" / "pytorch_model.bin"
    evil.parent.mkdir()
    torch.save({"transformer.wte.weight": torch.zeros(2, 2), "extra": Payload()}, evil)
    cache_repo(hub_cache, GALLERY_REPO, {f"{A_ID}/config.json": published_config(1), f"{A_ID}/pytorch_model.bin": evil})
    result = run_cli("gallery", "pull", A_ID)
    assert_user_error(result, "pytorch_model.bin holds Python objects other than tensors", "lts loads only weights")
    assert "weights_only" not in result.stderr and "Warning" not in result.stderr
    assert not marker.exists() and not (lts_home / "pulled").exists()


@pytest.mark.parametrize("kind", ["bin", "legacy-bin", "safetensors"])
def test_every_weight_format_is_checked_the_same(run_cli, hub_cache: Path, tmp_path: Path, kind: str) -> None:
    import torch

    from lts_cli.space import Arch

    a = Arch(1, 64, 256, 4)  # the same keys and buffers as the published files, narrower
    state = with_legacy_buffers(state_dict(1, 64, 4, 256), torch.uint8)
    config = published_config(1, 64, 4, 256)
    if kind == "safetensors":
        weights = write_safetensors(tmp_path / "model.safetensors", gpt2_shapes(a))
        name = "model.safetensors"
    else:
        weights, name = save_bin(tmp_path / "pytorch_model.bin", state, zip_format=kind == "bin"), "pytorch_model.bin"
    cache_repo(hub_cache, GALLERY_REPO, {f"{A_ID}/config.json": config, f"{A_ID}/{name}": weights})
    result = run_cli("gallery", "pull", A_ID, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["weights"] == name
    if kind != "safetensors":  # the same file with layer 0's MLP gone is refused by name
        del state["transformer.h.0.mlp.c_fc.weight"]
        cache_repo(hub_cache, GALLERY_REPO, {f"{A_ID}/{name}": save_bin(tmp_path / "cut.bin", state, kind == "bin")})
        assert_user_error(run_cli("gallery", "pull", A_ID), "has no weights for transformer.h.0.mlp.c_fc.weight")


def test_only_vocab_and_merges_at_the_root_builds_gpt2_bpe(run_cli, hub_cache: Path, tmp_path: Path) -> None:
    files = {k: v for k, v in tokenizer_files(tmp_path / "tok", tokenizer_json=False).items()}
    files |= {f"{A_ID}/config.json": published_config(1)}
    files |= {f"{A_ID}/model.safetensors": write_safetensors(tmp_path / "w.safetensors", published_shapes(1))}
    cache_repo(hub_cache, GALLERY_REPO, files)
    result = run_cli("gallery", "pull", A_ID, "--json")
    assert result.exit_code == 0 and "Traceback" not in result.stderr, result.stderr
    assert json.loads(result.stdout)[0]["tokenizer"] == "GPT-2 BPE built from its vocab.json and merges.txt"


def test_not_downloaded_offline(run_cli, hub_cache: Path, tmp_path: Path) -> None:
    start = time.perf_counter()
    for ref in ("gpt2_a9e3", A_ID):  # no repository in the cache at all
        assert_user_error(
            run_cli("generate", ref, "hi"), "not downloaded", f"lts gallery pull {A_ID}", f"lts train {A_ID}"
        )
    light_repo(hub_cache, tmp_path, {B_ID: (published_config(4), published_shapes(4))})  # another subfolder
    assert_user_error(run_cli("gallery", "pull", A_ID), "not downloaded", "HF_HUB_OFFLINE is set")
    assert_user_error(run_cli("export", A_ID), "not downloaded", "--allow-untrained")
    assert time.perf_counter() - start < 10


def test_pull_all_and_bad_usage(run_cli, hub_cache: Path, tmp_path: Path) -> None:
    assert_user_error(run_cli("gallery", "pull"), "or --all", code=2)
    assert_user_error(run_cli("gallery", "pull", A_ID, "--all"), "not both", code=2)
    published = (published_config(4), published_shapes(4))
    light_repo(hub_cache, tmp_path, {A_ID: published, B_ID: published})
    assert_user_error(run_cli("gallery", "pull", "--all"), "and 14 more are not downloaded")  # 18 of 20 missing
    other = run_cli("gallery", "pull", A_ID, B_ID, "--repo", GALLERY_REPO, "--json")
    assert other.exit_code == 0 and len(json.loads(other.stdout)) == 2


def test_repo_from_the_environment(run_cli, hub_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = write_safetensors(tmp_path / "model.safetensors", published_shapes(1))
    cache_repo(
        hub_cache, "someone/mirror", {f"{A_ID}/config.json": published_config(1), f"{A_ID}/model.safetensors": weights}
    )
    monkeypatch.setenv("LTS_GALLERY_REPO", "someone/mirror")
    result = run_cli("gallery", "pull", A_ID, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["repo"] == "someone/mirror"


# ---- the size of a download, before it starts ----------------------------------------------------


def online(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def hub_listing(monkeypatch: pytest.MonkeyPatch, sizes: dict[str, int]) -> list:
    """The Hub's answer to a dry run (huggingface_hub.snapshot_download(dry_run=True)), simulated."""
    from lts_cli import hub

    asked: list = []

    def plan(repo, revision, patterns):  # type: ignore[no-untyped-def]
        from fnmatch import fnmatch

        asked.append(repo)
        return [hub.PlannedFile(p, s, False) for p, s in sizes.items() if any(fnmatch(p, pat) for pat in patterns)]

    monkeypatch.setattr(hub, "plan", plan)
    return asked


PUBLISHED_SIZES = {f"{A_ID}/config.json": 849, f"{A_ID}/pytorch_model.bin": 275_104_221, "tokenizer.json": 2_107_625,
                   "vocab.json": 798_156, "merges.txt": 456_356, "special_tokens_map.json": 99}  # fmt: skip


def test_dry_run_lists_what_would_be_fetched(run_cli, hub_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    online(monkeypatch)
    hub_listing(monkeypatch, PUBLISHED_SIZES)
    result = run_cli("gallery", "pull", A_ID, "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["download_bytes"] == sum(PUBLISHED_SIZES.values()) and plan["free_bytes"] > 0
    assert {f["path"] for f in plan["files"]} == set(PUBLISHED_SIZES)
    text = run_cli("gallery", "pull", A_ID, "--dry-run")
    assert "pytorch_model.bin  275.1 MB" in text.stdout and "would download 278.5 MB" in text.stderr
    assert not hub_cache.exists()  # nothing fetched


def test_a_download_that_does_not_fit_the_disk_is_refused(run_cli, hub_cache: Path, monkeypatch) -> None:
    from lts_cli import hub

    online(monkeypatch)
    hub_listing(monkeypatch, PUBLISHED_SIZES)
    monkeypatch.setattr(hub, "free_bytes", lambda path: 100_000_000)
    assert_user_error(run_cli("gallery", "pull", A_ID), "needs 0.28 GB", "0.10 GB free", "HF_HUB_CACHE")


def test_online_the_model_is_pulled_first_saying_so(run_cli, hub_cache: Path, tmp_path: Path, monkeypatch) -> None:
    """With the Hub reachable (simulated: the dry run and the download are replaced by what they would
    answer and leave), `lts export ID` of a gallery id that is not pulled says how much it fetches."""
    from lts_cli import hub

    online(monkeypatch)
    asked = hub_listing(monkeypatch, PUBLISHED_SIZES)
    real = hub.snapshot

    def download(repo, revision, patterns, local_only):  # type: ignore[no-untyped-def]
        if not local_only:  # damaged weights: the pull must refuse them after downloading
            light_repo(hub_cache, tmp_path, {A_ID: (published_config(4), published_shapes(3))})
        return real(repo, revision, patterns, local_only=True)

    monkeypatch.setattr(hub, "snapshot", download)
    exported = run_cli("export", A_ID)
    assert f"downloading 6 file(s), 0.28 GB, from {GALLERY_REPO}" in exported.stderr and asked == [GALLERY_REPO]
    assert_user_error(exported, "has no weights for transformer.h.3.*")


# ---- the real thing: a published checkpoint generated from and exported --------------------------


@pytest.fixture(scope="session")
def real_hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The published repository's layout with real weights: A_ID as a 1-layer GPT-2-small-width pickle
    with the legacy masks (the published files have 4-10 layers), and the root tokenizer."""
    root = tmp_path_factory.mktemp("hub")
    published_repo(root / "cache", root / "work", A_ID, n_layer=1)
    return root / "cache"


@pytest.mark.slow
def test_pull_generate_export_a_published_checkpoint(run_cli, real_hub: Path, lts_home: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(real_hub))
    assert run_cli("gallery", "pull", "gpt2_a9e3").exit_code == 0
    streamed = run_cli("generate", "gpt2_a9e3", "ROMEO:", "--max-new-tokens", "8", "--seed", "1")
    assert streamed.exit_code == 0, streamed.stderr
    assert streamed.stdout.startswith("ROMEO:") and f"{A_ID} (pulled; L1 d768 ff3072 h12)" in streamed.stderr
    greedy = ["ROMEO:", "--greedy", "--max-new-tokens", "6", "--ignore-eos", "--json"]
    torch_out = json.loads(run_cli("generate", "gpt2_a9e3", *greedy).stdout)
    onnx = run_cli("generate", "gpt2_a9e3", *greedy, "--backend", "onnx")
    assert onnx.exit_code == 0, onnx.stderr
    assert json.loads(onnx.stdout)["texts"] == torch_out["texts"] and torch_out["source"] == "pulled"
    int8 = run_cli("export", "gpt2_a9e3", "--quantize", "int8", "--json")
    assert int8.exit_code == 0, int8.stderr
    info = json.loads(int8.stdout)
    assert info["path"] == str(lts_home / "exports" / A_ID / "onnx-int8") and info["published_as"] == A_ID
    assert info["validation"]["perplexity_increase"] < 0.10
    exported_arch = json.loads((lts_home / "exports" / A_ID / "onnx-int8" / "arch.json").read_text())
    assert exported_arch["d_model"] == 768 and exported_arch["n_layer"] == 1
    card = (lts_home / "exports" / A_ID / "onnx-int8" / "README.md").read_text()
    assert f"published under the gallery id `{A_ID}`" in card and "| 1 | 768 | 3072 | 12 |" in card
    assert not list(real_hub.rglob("onnx*"))  # exports go to the workspace, never into the Hub cache
    profiled = run_cli("profile", str(lts_home / "exports" / A_ID / "onnx-int8"), "--seq-len", "16", "--trials", "2")
    assert profiled.exit_code == 0, profiled.stderr


@pytest.mark.slow
def test_models_list_and_rm_leave_the_hub_cache_alone(run_cli, real_hub: Path, lts_home: Path, monkeypatch) -> None:
    import shutil

    cache = lts_home.parent / "hub-copy"
    shutil.copytree(real_hub, cache, symlinks=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert run_cli("gallery", "pull", A_ID).exit_code == 0
    assert run_cli("export", A_ID).exit_code == 0
    (row,) = [r for r in json.loads(run_cli("models", "list", "--json").stdout) if r["id"] == A_ID]
    assert row["source"] == "pulled" and row["size_bytes"] > 186_000_000 and len(row["exports"]) == 1
    assert "pulled from the Hub" in run_cli("models", "list").stdout

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
    assert len(left) < len(before)  # A_ID's blobs are gone; the root tokenizer's stay
    assert (cache / "models--microsoft--lts-gpt2-sm" / "snapshots" / HUB_COMMIT / "tokenizer.json").is_file()


# ---- Hub models by name ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def named_hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`gpt2`, `distilbert/distilgpt2` and `someone/tiny-gpt2` laid out as the real gpt2 repository (the
    last with only a 2019-style pytorch_model.bin), and `someone/tiny-llama`, a model that is not a GPT-2."""
    import transformers

    root = tmp_path_factory.mktemp("named")
    cache = root / "cache"
    gpt2_like_repo(cache, root / "work", "gpt2")
    extra = {"_num_labels": 1, "id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}  # distilgpt2's
    gpt2_like_repo(cache, root / "work", "distilbert/distilgpt2", n_layer=1, extra=extra)
    gpt2_like_repo(cache, root / "work", "someone/tiny-gpt2", n_layer=1, n_embd=32, n_head=2, safetensors=False)
    config = transformers.LlamaConfig(vocab_size=50257, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=2, bos_token_id=50256,
                                      eos_token_id=50256)  # fmt: skip
    transformers.set_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(root / "llama")
    files = {p.name: p for p in (root / "llama").iterdir()} | tokenizer_files(root / "llama-tok")
    cache_repo(cache, "someone/tiny-llama", files)
    return cache


@pytest.mark.slow
@pytest.mark.parametrize("repo", ["gpt2", "distilbert/distilgpt2", "someone/tiny-gpt2"])
def test_a_hub_model_by_name(run_cli, named_hub: Path, lts_home: Path, monkeypatch, repo: str) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(named_hub))
    generated = run_cli("generate", repo, "Hello", "--max-new-tokens", "4", "--greedy", "--json")
    assert generated.exit_code == 0, generated.stderr
    assert json.loads(generated.stdout)["source"] == "hub"
    exported = run_cli("export", repo, "--json")
    assert exported.exit_code == 0, exported.stderr
    assert json.loads(exported.stdout)["path"] == str(lts_home / "exports" / repo.replace("/", "--") / "onnx")
    profiled = run_cli("profile", repo, "--seq-len", "16", "--trials", "2", "--warmup", "1", "--json")
    assert profiled.exit_code == 0, profiled.stderr
    config = json.loads(
        (named_hub / f"models--{repo.replace('/', '--')}" / "snapshots" / HUB_COMMIT / "config.json").read_text()
    )
    assert json.loads(profiled.stdout)["arch"]["d_model"] == config["n_embd"]
    assert json.loads(profiled.stdout)["arch"]["d_inner"] == 4 * config["n_embd"]  # no n_inner: 4 x n_embd


@pytest.mark.slow
def test_a_model_that_is_not_a_gpt2(run_cli, named_hub: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(named_hub))
    generated = run_cli("generate", "someone/tiny-llama", "Hello", "--max-new-tokens", "3")
    assert generated.exit_code == 0, generated.stderr
    for args in (["export", "someone/tiny-llama"], ["profile", "someone/tiny-llama"],
                 ["generate", "someone/tiny-llama", "Hi", "--backend", "onnx"]):  # fmt: skip
        assert_user_error(run_cli(*args), "'llama' model", "GPT-2")


def test_a_hub_model_that_is_not_cached_offline(run_cli, hub_cache: Path) -> None:
    assert_user_error(run_cli("generate", "gpt2", "Hello"), "nor in the local Hugging Face cache", "HF_HUB_OFFLINE")
    assert_user_error(run_cli("profile", "openai-community/gpt2"), "nor in the local Hugging Face cache")
    assert_user_error(
        run_cli("generate", "gpt2_a9e3", "hi", "--revision", "main"), "--revision is for Hugging Face Hub"
    )
