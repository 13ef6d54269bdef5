"""The analytic parameter count against real transformers GPT-2 models (tied LM head)."""

from __future__ import annotations

import pytest
import torch
import transformers

from lts_cli.modeling import arch_from_gpt2_config, gpt2_config
from lts_cli.space import Arch

CONFIGS = [
    Arch(n_layer=4, d_model=128, d_inner=768, n_head=4),  # gallery a9e3, 1.06M
    Arch(n_layer=10, d_model=384, d_inner=960, n_head=4),  # gallery ddf63, 13.32M
    Arch(n_layer=9, d_model=960, d_inner=960, n_head=2),  # gallery 6c6e, 49.85M
    Arch(n_layer=1, d_model=32, d_inner=64, n_head=2, vocab_size=512, n_positions=64),
    Arch(n_layer=3, d_model=192, d_inner=128, n_head=8, vocab_size=1000, n_positions=256),
]


def gpt2(arch: Arch) -> transformers.GPT2LMHeadModel:
    with torch.device("meta"):
        return transformers.GPT2LMHeadModel(gpt2_config(arch))


@pytest.mark.parametrize("arch", CONFIGS, ids=lambda a: a.short())
def test_formula_equals_transformers_count(arch: Arch) -> None:
    model = gpt2(arch)
    assert model.lm_head.weight is model.transformer.wte.weight  # tied, stored once
    embeddings = {id(model.transformer.wte.weight), id(model.transformer.wpe.weight)}
    params = list(model.parameters())  # already deduplicates the tied tensor
    assert sum(p.numel() for p in params if id(p) not in embeddings) == arch.non_embedding_params
    assert sum(p.numel() for p in params) == arch.unique_params


@pytest.mark.parametrize("arch", CONFIGS, ids=lambda a: a.short())
def test_config_round_trip(arch: Arch) -> None:
    assert arch_from_gpt2_config(gpt2_config(arch)) == arch
