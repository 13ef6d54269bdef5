"""Arch <-> transformers GPT-2: the one place our field names map to transformers' (torch)."""

from __future__ import annotations

from typing import Any

from lts_cli.space import Arch


def gpt2_config(arch: Arch, **overrides: Any) -> Any:
    """A fresh `GPT2Config` for `arch` (tied LM head, GPT-2's gelu_new); `overrides` for training knobs."""
    import transformers

    return transformers.GPT2Config(
        vocab_size=arch.vocab_size,
        n_positions=arch.n_positions,
        n_embd=arch.d_model,
        n_layer=arch.n_layer,
        n_head=arch.n_head,
        n_inner=arch.d_inner,
        tie_word_embeddings=True,
        **overrides,
    )


def arch_from_gpt2_config(config: Any) -> Arch:
    """The Arch of a transformers GPT-2 config (n_inner None means 4 x n_embd, as transformers does)."""
    return Arch(
        n_layer=config.n_layer,
        d_model=config.n_embd,
        d_inner=config.n_inner or 4 * config.n_embd,
        n_head=config.n_head,
        vocab_size=config.vocab_size,
        n_positions=config.n_positions,
    )
