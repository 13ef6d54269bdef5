"""Sampling settings: `GenerateConfig` (lts generate's defaults, the published ones) and the same
defaults as a transformers GenerationConfig for model folders, so that a plain
`pipeline("text-generation", folder)` samples like `lts generate`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lts_cli.errors import ConfigError, invalid


@dataclass(frozen=True)
class GenerateConfig:
    """Published defaults: sampling with temperature 0.8 and top-p 0.95, 128 new tokens."""

    max_new_tokens: int = 128
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 0  # 0: off
    greedy: bool = False
    seed: int | None = None
    num_return_sequences: int = 1
    stop_at_eos: bool = True  # False: always generate max_new_tokens (benchmarks)

    def __post_init__(self) -> None:
        for name in ("max_new_tokens", "num_return_sequences"):
            if getattr(self, name) < 1:
                raise invalid(name, "must be at least 1", getattr(self, name))
        if not 0 < self.temperature < math.inf:
            raise ConfigError(
                ["temperature", "greedy"],
                "{0} must be greater than 0 (for the most likely token every time, use {1}) and finite"
                + f", got {self.temperature!r}",
            )
        if not 0 < self.top_p <= 1:
            raise invalid("top_p", "must be in (0, 1]", self.top_p)
        if self.top_k < 0:
            raise invalid("top_k", "must be 0 (off) or more", self.top_k)


def generation_defaults(eos_token_id: int, n_positions: int) -> Any:
    """lts's sampling defaults as a transformers GenerationConfig, so that a plain
    `pipeline("text-generation", folder)` samples like `lts generate`. transformers does not stop at
    the end of the context, so a model of fewer than 256 positions gets half its context as new tokens."""
    import transformers

    d = GenerateConfig()
    return transformers.GenerationConfig(
        do_sample=not d.greedy,
        temperature=d.temperature,
        top_p=d.top_p,
        max_new_tokens=min(d.max_new_tokens, n_positions // 2),
        bos_token_id=eos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=eos_token_id,
    )
