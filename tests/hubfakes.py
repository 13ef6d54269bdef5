"""Hugging Face Hub caches laid out as the real repositories are, built offline for the tests.

What is copied from the real thing (public facts about the repositories):
- `microsoft/lts-gpt2-sm`: root `tokenizer.json`, `vocab.json`, `merges.txt` and a 99-byte
  `special_tokens_map.json`; one subfolder per gallery id holding only `config.json` (transformers
  4.26's GPT2Config, about 850 bytes) and a pickled `pytorch_model.bin`. The weights have GPT-2-small
  widths (n_embd 768, n_inner 3072, 12 heads) with the gallery's n_layer, not the table's widths, and
  carry transformers <= 4.26's buffers: a uint8 `attn.bias` causal mask (1 MiB per layer; the pickle
  imports torch.ByteStorage) and a float32 `attn.masked_bias` scalar, keys prefixed `transformer.`, the
  LM head stored with (and tied to) the token embedding.
- `gpt2` (openai-community/gpt2) and `distilgpt2`: their real config.json (legacy `n_ctx`,
  `task_specific_params`, no `n_inner`), `generation_config.json`, `tokenizer_config.json`
  (`{"model_max_length": 1024}`), `model.safetensors` and a 2019-style `pytorch_model.bin`: the pre-zip
  pickle format, keys without `transformer.`, a float32 `attn.bias`, no LM head.
What is shrunk, to keep the tests fast: the layer count (and for gpt2-like repos the width); the
vocabulary stays GPT-2's 50257 so the real tokenizer fits.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from pathlib import Path
from typing import Any

HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"
GALLERY_REPO = "microsoft/lts-gpt2-sm"
SPECIAL_TOKENS = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}


def cache_repo(cache: Path, repo: str, files: dict[str, Path | bytes]) -> Path:
    """A repository in the Hugging Face cache layout, as huggingface_hub leaves it after a download:
    `refs/main` names the commit, `snapshots/<commit>/<path>` are links to `blobs/<sha256>`.
    `files`: path in the repository -> a file (or bytes) whose contents go there. Returns the snapshot."""
    base = cache / f"models--{repo.replace('/', '--')}"
    snapshot = base / "snapshots" / HUB_COMMIT
    (base / "refs").mkdir(parents=True, exist_ok=True)
    (base / "refs" / "main").write_text(HUB_COMMIT)
    (base / "blobs").mkdir(exist_ok=True)
    for name, source in files.items():
        blob = base / "blobs" / _blob_name(source)
        if isinstance(source, bytes):
            blob.write_bytes(source)
        elif not blob.exists():
            os.link(source, blob)  # a hard link: large (sparse) weight files are neither read nor copied
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snapshot


def _blob_name(source: Path | bytes) -> str:
    """The blob's name: the content's sha256 as huggingface_hub names LFS blobs (for files over 16 MiB,
    of their size and first MiB: nothing offline checks it, and hashing them would cost seconds)."""
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    size = source.stat().st_size
    if size <= 16 * 2**20:
        return hashlib.sha256(source.read_bytes()).hexdigest()
    with source.open("rb") as f:
        return hashlib.sha256(str(size).encode() + f.read(2**20)).hexdigest()


def write_safetensors(path: Path, shapes: dict[str, tuple[int, ...]]) -> Path:
    """A valid float32 safetensors file of zeros with these tensors, written sparse (instant at any size)."""
    header: dict[str, Any] = {}
    offset = 0
    for name, shape in shapes.items():
        size = 4
        for n in shape:
            size *= n
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)
    return path


def published_config(n_layer: int, n_embd: int = 768, n_head: int = 12, n_inner: int | None = 3072) -> bytes:
    """config.json as transformers 4.26's GPT2Config writes it (sorted keys, indent 2)."""
    config = {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": 50256,
        "embd_pdrop": 0.1,
        "eos_token_id": 50256,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_embd": n_embd,
        "n_head": n_head,
        "n_inner": n_inner,
        "n_layer": n_layer,
        "n_positions": 1024,
        "reorder_and_upcast_attn": False,
        "resid_pdrop": 0.1,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "torch_dtype": "float32",
        "transformers_version": "4.26.1",
        "use_cache": True,
        "vocab_size": 50257,
    }
    return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()


def GPT2_CONFIG(n_layer: int = 12, n_embd: int = 768, n_head: int = 12, extra: dict | None = None) -> bytes:
    """openai-community/gpt2's config.json (665 bytes as published), with the shape fields given."""
    config = {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": 50256,
        "embd_pdrop": 0.1,
        "eos_token_id": 50256,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_ctx": 1024,
        "n_embd": n_embd,
        "n_head": n_head,
        "n_layer": n_layer,
        "n_positions": 1024,
        "resid_pdrop": 0.1,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
        "vocab_size": 50257,
        **(extra or {}),
    }
    return json.dumps(dict(sorted(config.items())), indent=2).encode()


def state_dict(n_layer: int, n_embd: int, n_head: int, n_inner: int | None = None, seed: int = 0) -> dict[str, Any]:
    """The weights of a transformers GPT2LMHeadModel of that shape (random, seeded)."""
    import transformers

    transformers.set_seed(seed)
    config = transformers.GPT2Config(
        n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_inner=n_inner, vocab_size=50257, n_positions=1024
    )
    return dict(transformers.GPT2LMHeadModel(config).state_dict())


def with_legacy_buffers(
    state: dict[str, Any], mask_dtype: Any, prefixed: bool = True, masked_bias: bool = True
) -> dict:
    """Add the per-layer buffers old transformers saved: `attn.bias` (the causal mask) and `attn.masked_bias`."""
    import torch

    layers = sorted({int(k.split(".")[2]) for k in state if k.startswith("transformer.h.")})
    mask = torch.tril(torch.ones(1024, 1024, dtype=torch.uint8)).view(1, 1, 1024, 1024).to(mask_dtype)
    out = dict(state)
    for i in layers:
        out[f"transformer.h.{i}.attn.bias"] = mask.clone()
        if masked_bias:
            out[f"transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    if not prefixed:
        out = {k.removeprefix("transformer."): v for k, v in out.items() if k != "lm_head.weight"}
    return out


def save_bin(path: Path, state: dict[str, Any], zip_format: bool = True) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    return path


def tokenizer_files(folder: Path, tokenizer_json: bool = True) -> dict[str, Path | bytes]:
    """The published repository's root tokenizer files (`tokenizer_json=False`: only vocab.json and merges.txt)."""
    from importlib import resources

    from lts_cli.tokenizer import shipped

    folder.mkdir(parents=True, exist_ok=True)
    data = resources.files("lts_cli").joinpath("data/gpt2-tokenizer")
    files: dict[str, Path | bytes] = {
        "vocab.json": data.joinpath("vocab.json").read_bytes(),
        "merges.txt": data.joinpath("merges.txt").read_bytes(),
        "special_tokens_map.json": json.dumps(SPECIAL_TOKENS).encode(),  # 99 bytes, as published
    }
    if tokenizer_json:
        shipped().save_pretrained(folder)
        files["tokenizer.json"] = folder / "tokenizer.json"
    return files


def published_repo(cache: Path, work: Path, model_id: str, n_layer: int = 1, repo: str = GALLERY_REPO) -> Path:
    """`repo` with the real layout: root tokenizer files and `model_id/` with config.json and a
    GPT-2-small-width pytorch_model.bin of `n_layer` layers, with the legacy uint8 masks."""
    import torch

    state = with_legacy_buffers(state_dict(n_layer, 768, 12, 3072), torch.uint8)
    weights = save_bin(work / model_id / "pytorch_model.bin", state)
    files = {f"{model_id}/config.json": published_config(n_layer), f"{model_id}/pytorch_model.bin": weights}
    return cache_repo(cache, repo, {**tokenizer_files(work / "tokenizer"), **files})


def gpt2_like_repo(
    cache: Path,
    work: Path,
    repo: str,
    n_layer: int = 2,
    n_embd: int = 64,
    n_head: int = 4,
    extra: dict | None = None,
    safetensors: bool = True,
) -> Path:
    """A repository laid out as openai-community/gpt2 is (a narrower model of the same kind);
    `safetensors=False`: only the 2019-style pytorch_model.bin, as older repositories have."""
    from safetensors.torch import save_file

    from lts_cli.tokenizer import shipped

    state = state_dict(n_layer, n_embd, n_head)
    folder = work / repo.replace("/", "--")
    folder.mkdir(parents=True, exist_ok=True)
    tied = {k: v.contiguous() for k, v in state.items() if k != "lm_head.weight"}
    save_file(tied, folder / "model.safetensors", metadata={"format": "pt"})
    legacy = with_legacy_buffers(state, mask_dtype=__import__("torch").float32, prefixed=False, masked_bias=False)
    save_bin(folder / "pytorch_model.bin", legacy, zip_format=False)
    shipped().save_pretrained(folder / "tok")
    generation = {"bos_token_id": 50256, "eos_token_id": 50256, "transformers_version": "4.26.0.dev0",
                  "_from_model_config": True}  # fmt: skip
    files: dict[str, Path | bytes] = {
        "config.json": GPT2_CONFIG(n_layer, n_embd, n_head, extra),
        "generation_config.json": json.dumps(generation, indent=2).encode(),
        "model.safetensors": folder / "model.safetensors",
        "pytorch_model.bin": folder / "pytorch_model.bin",
        "tokenizer.json": folder / "tok" / "tokenizer.json",
        "tokenizer_config.json": b'{"model_max_length": 1024}',
        **{
            k: v
            for k, v in tokenizer_files(folder / "files", tokenizer_json=False).items()
            if k != "special_tokens_map.json"
        },
    }
    if not safetensors:
        del files["model.safetensors"]
    snapshot = cache_repo(cache, repo, files)
    shutil.rmtree(folder)
    return snapshot
