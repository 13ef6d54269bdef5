"""Weight files checked against the model their config describes, without building it (lts_cli.weights)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers

from lts_cli.errors import LtsError
from lts_cli.modeling import gpt2_config
from lts_cli.space import Arch
from lts_cli.weights import check_gpt2, gpt2_shapes, read_shapes
from tests.hubfakes import save_bin, with_legacy_buffers, write_safetensors

ARCH = Arch(2, 32, 64, 2, vocab_size=100, n_positions=16)


def model_state() -> dict[str, torch.Tensor]:
    transformers.set_seed(0)
    return dict(transformers.GPT2LMHeadModel(gpt2_config(ARCH)).state_dict())


def test_the_shapes_are_transformers_state_dict() -> None:
    state = {k: tuple(v.shape) for k, v in model_state().items() if k != "lm_head.weight"}
    assert gpt2_shapes(ARCH) == state
    assert sum(torch.Size(shape).numel() for shape in state.values()) == ARCH.unique_params


def test_what_transformers_saves_is_accepted(tmp_path: Path) -> None:
    transformers.GPT2LMHeadModel(gpt2_config(ARCH)).save_pretrained(tmp_path / "st")
    check_gpt2(tmp_path / "st" / "model.safetensors", ARCH)
    state = with_legacy_buffers(model_state(), torch.bool)  # transformers 4.27-4.29: bool masks
    check_gpt2(save_bin(tmp_path / "a.bin", state), ARCH)
    unprefixed = with_legacy_buffers(model_state(), torch.float32, prefixed=False, masked_bias=False)  # gpt2, 2019
    check_gpt2(save_bin(tmp_path / "b.bin", unprefixed, zip_format=False), ARCH)


def test_an_untied_lm_head_of_another_shape_is_refused(tmp_path: Path) -> None:
    state = model_state()
    state["lm_head.weight"] = torch.zeros(7, 32)
    with pytest.raises(LtsError, match=r"tensors a GPT-2 of config\.json does not have: lm_head\.weight"):
        check_gpt2(save_bin(tmp_path / "c.bin", state), ARCH)


def test_a_truncated_or_garbled_safetensors_file_is_named(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "w.safetensors", gpt2_shapes(ARCH))
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(size - 4)
    with pytest.raises(LtsError, match="is damaged: its header describes"):
        read_shapes(path)
    path.write_bytes(b"\xff" * size)  # the same size, random bytes
    with pytest.raises(LtsError, match="not a readable safetensors file"):
        read_shapes(path)


def test_a_sharded_index_reads_every_shard(tmp_path: Path) -> None:
    import json

    shapes = gpt2_shapes(ARCH)
    names = list(shapes)
    write_safetensors(tmp_path / "model-00001-of-00002.safetensors", {n: shapes[n] for n in names[:5]})
    write_safetensors(tmp_path / "model-00002-of-00002.safetensors", {n: shapes[n] for n in names[5:]})
    weight_map = {n: f"model-0000{1 if i < 5 else 2}-of-00002.safetensors" for i, n in enumerate(names)}
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    check_gpt2(index, ARCH)
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(LtsError, match=r"names the shard model-00002-of-00002\.safetensors, which is missing"):
        check_gpt2(index, ARCH)


def test_a_model_folder_with_a_missing_tensor_is_refused_by_name(run_cli, tiny_model: Path, lts_home: Path) -> None:
    from safetensors.torch import load_file, save_file

    from tests.conftest import assert_user_error, install

    folder = install(tiny_model, lts_home, "cut")
    state = load_file(folder / "model.safetensors")
    del state["transformer.h.0.mlp.c_fc.weight"]
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    for args in (["generate", "cut", "hi"], ["export", "cut"]):
        assert_user_error(run_cli(*args), "model.safetensors has no weights for transformer.h.0.mlp.c_fc.weight")
