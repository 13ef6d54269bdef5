"""The evaluations of a training: the fixed validation sample periodic evaluations use (blocks spread
evenly over the split, the same every time), and the final ones, each on as much of its split as
costs at most a tenth of the training time (train_budget.final_eval), with the tokens it covered."""

from __future__ import annotations

import math
from typing import Any

from lts_cli import processes, train_budget
from lts_cli.corpus import block_count, blocks_dataset
from lts_cli.train_plan import Plan
from lts_cli.views import Event, OnEvent


def sample(tokens: Any, seq_len: int, count_tokens: int) -> Any:
    """The fixed sample of a split: `count_tokens` tokens of blocks spread evenly over it (0: all)."""

    blocks = blocks_dataset(tokens, seq_len)
    wanted = math.ceil(count_tokens / seq_len) if count_tokens else len(blocks)
    return _subset(blocks, train_budget.spread(len(blocks), wanted))


def final(
    trainer: Any, tokens: dict[str, Any], config: Any, plan: Plan, progress: Any, emit: OnEvent
) -> tuple[dict[str, float], dict[str, int]]:
    """The final validation loss (and test, with `test`), each on as much of its split as the budget
    allows (train_budget.final_eval); the losses and the tokens each was computed on."""
    rate = progress.train_tokens_per_s() or 1.0
    train_s = plan.max_steps * config.tokens_per_step / rate
    eval_rate = progress.eval_tokens_per_s() or rate * train_budget.EVAL_SPEEDUP
    sample_blocks = math.ceil(config.eval_tokens / config.seq_len) if config.eval_tokens else 0
    losses, evaluated = {}, {}
    for split in ("validation", "test") if config.test else ("validation",):
        total = block_count(tokens[split], config.seq_len)
        if total < 1:
            continue
        choice = train_budget.final_eval(config.final_eval, split, total, sample_blocks, max(4, plan.eval_batch),
                                         config.seq_len, train_s, eval_rate)  # fmt: skip
        choice = processes.agree(choice)  # the rates are each process's own; the evaluation is shared
        if choice.note:
            emit(Event("note", choice.note))
        emit(Event("final-eval", label=f"final evaluation ({split})"))
        data = _subset(blocks_dataset(tokens[split], config.seq_len), train_budget.spread(total, choice.blocks))
        losses[split] = trainer.evaluate(data, metric_key_prefix="final")["final_loss"]
        evaluated[split] = choice.blocks * config.seq_len
    return losses, evaluated


def _subset(dataset: Any, indices: list[int]) -> Any:
    import torch

    return torch.utils.data.Subset(dataset, indices)
