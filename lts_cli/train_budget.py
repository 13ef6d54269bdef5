"""What a training budget costs (pure): the peak memory of a training and an evaluation step, the
micro-batch split that fits the free memory, durations (`--max-time 2h`) and how they read.

The memory model counts, per process: fp32 weights, gradients and AdamW's two moments (16 bytes per
parameter); per layer and token the activations autograd keeps (the block's inputs, the Q/K/V and
MLP intermediates, the attention scores and probabilities, dropout masks); and the logits of the
50257-wide LM head with what the loss and its backward pass hold of them at once: four fp32 copies
(the largest term at the published budget: 64 x 1024 tokens x 50257 x 4 bytes is 13.2 GB per copy).
Evaluation keeps no gradients or optimizer state, one layer's activations at a time, and two copies.
Against the kernel's peak-RSS counter for real steps here, the estimate is 1.1-1.2x what is used
(tests/test_train_budget.py), a margin on top of using only FREE_SHARE of the free memory.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from lts_cli.errors import LtsError
from lts_cli.space import Arch

OVERHEAD_BYTES = 800 * 2**20  # torch, transformers, the interpreter and the token arrays, measured here
FREE_SHARE = 0.8  # of the memory free when training starts: what a step may use
GB = 1e9


@dataclass(frozen=True)
class StepMemory:
    """The peak bytes of one step of `batch` sequences."""

    state: int  # weights (+ gradients and optimizer moments when training)
    activations: int
    logits: int
    overhead: int = OVERHEAD_BYTES

    @property
    def total(self) -> int:
        return self.state + self.activations + self.logits + self.overhead


def _bytes_per_activation(precision: str) -> int:
    return 2 if precision in ("bf16", "fp16") else 4


def train_step(arch: Arch, seq_len: int, batch: int, precision: str = "fp32") -> StepMemory:
    """Peak memory of a forward and backward pass over `batch` x `seq_len` tokens."""
    w, h, f, a, s = _bytes_per_activation(precision), arch.d_model, arch.d_inner, arch.n_head, seq_len
    per_token_layer = w * (9 * h + 2 * f + 2 * a * s) + (a * s + 3 * h)  # tensors, then 1-byte dropout masks
    tokens = batch * seq_len
    logits = tokens * arch.vocab_size * (w + 4 * 4 if w < 4 else 4 * 4)  # (half logits), fp32 copies
    return StepMemory(16 * arch.unique_params, tokens * (arch.n_layer * per_token_layer + 2 * h * w), logits)


def eval_step(arch: Arch, seq_len: int, batch: int, precision: str = "fp32") -> StepMemory:
    """Peak memory of a forward pass (no gradients) over `batch` x `seq_len` tokens."""
    w, h, f, a, s = _bytes_per_activation(precision), arch.d_model, arch.d_inner, arch.n_head, seq_len
    tokens = batch * seq_len
    one_layer = tokens * w * (6 * h + 2 * f + 2 * a * s)
    return StepMemory(4 * arch.unique_params, one_layer, tokens * arch.vocab_size * (w + 2 * 4 if w < 4 else 2 * 4))


@dataclass(frozen=True)
class Split:
    """How the per-process batch is run: `micro` sequences at a time, `accumulation` times per step
    (the user's own accumulation included), evaluation `eval_batch` sequences at a time."""

    batch: int
    micro: int
    accumulation: int
    eval_batch: int
    step: StepMemory  # at `micro`
    free_bytes: int
    needed_for_batch: int  # bytes a step of the whole batch would need


def split(
    arch: Arch,
    seq_len: int,
    batch: int,
    accumulation: int,
    free_bytes: int,
    precision: str = "fp32",
    processes: int = 1,
) -> Split:
    """The largest micro-batch dividing `batch` whose training step fits this process's share of the
    free memory, and the largest evaluation batch (at most `batch`) that fits; an error naming the
    estimate and the flags that help when not even one sequence fits."""
    budget = int(free_bytes * FREE_SHARE / max(1, processes))
    full = train_step(arch, seq_len, batch, precision)
    fitting = [
        m for m in range(batch, 0, -1) if batch % m == 0 and train_step(arch, seq_len, m, precision).total <= budget
    ]
    if not fitting:
        one = train_step(arch, seq_len, 1, precision)
        raise LtsError(
            f"one sequence of --seq-len {seq_len} needs about {one.total / GB:.1f} GB to train this architecture "
            f"(weights and optimizer {one.state / GB:.1f}, activations {one.activations / GB:.1f}, logits "
            f"{one.logits / GB:.1f}), more than the {budget / GB:.1f} GB this process may use of the "
            f"{free_bytes / GB:.1f} GB free; lower --seq-len or train a smaller architecture"
        )
    micro = fitting[0]
    eval_batch = next((m for m in range(batch, 0, -1) if eval_step(arch, seq_len, m, precision).total <= budget), 1)
    step = train_step(arch, seq_len, micro, precision)
    return Split(batch, micro, accumulation * (batch // micro), eval_batch, step, free_bytes, full.total)


# ---- time ---------------------------------------------------------------------------------------

_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in `2h`, `30m`, `90s`, `1.5h`, `1h30m` or a plain number of seconds."""
    cleaned = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", cleaned):
        return float(cleaned)
    parts = re.findall(r"(\d+(?:\.\d+)?)(min|d|h|m|s)", cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise ValueError(f"{text!r} is not a duration (such as 2h, 30m, 1h30m, 90s)")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def describe_duration(seconds: float) -> str:
    """`0.4 s`, `42 s`, `12 min`, `3.4 h`, `20 days`."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def steps_within(seconds: float, step_s: float) -> int:
    """Optimizer steps that fit in `seconds` at `step_s` each (at least 1)."""
    return max(1, math.floor(seconds / step_s))


# ---- evaluation ---------------------------------------------------------------------------------

FINAL_EVAL_SHARE = 0.10  # the final evaluation may cost this share of the training time
EVAL_SPEEDUP = 3.0  # a forward pass alone, against forward + backward + optimizer: the guess before measuring


def spread(total: int, count: int) -> list[int]:
    """`count` block indices spread evenly over `total` blocks (all of them when count >= total): the
    same blocks every time, so evaluations compare."""
    if count >= total:
        return list(range(total))
    return [int((i + 0.5) * total / count) for i in range(count)]


@dataclass(frozen=True)
class EvalChoice:
    blocks: int  # how many blocks of the split to evaluate (spread over it)
    whole: bool  # all of the split
    note: str | None = None  # why fewer, when it is fewer than the fixed sample


def final_eval(
    mode: str, split: str, total: int, sample: int, least: int, block_tokens: int, train_s: float, eval_rate: float
) -> EvalChoice:
    """How much of `split` (`total` blocks) the final evaluation covers. `full`: all of it; `sample`:
    the fixed sample (`sample` blocks); `auto`: all of it when that costs at most FINAL_EVAL_SHARE of
    the training time (`train_s`, at `eval_rate` tokens/s), else the fixed sample when that does,
    else as many blocks as do (at least `least`), and a note saying so."""
    sample = min(sample, total) if sample else total
    if mode == "full":
        return EvalChoice(total, True)
    if mode == "sample":
        return EvalChoice(sample, sample == total)
    budget_tokens = FINAL_EVAL_SHARE * train_s * eval_rate
    if total * block_tokens <= budget_tokens:
        return EvalChoice(total, True)
    if sample < total and sample * block_tokens <= budget_tokens:
        return EvalChoice(sample, False)
    blocks = min(sample, max(least, int(budget_tokens // block_tokens)))
    cost = describe_duration(sample * block_tokens / eval_rate)
    what = "the whole split" if sample == total else "the fixed sample"
    note = (
        f"final {split} on {blocks * block_tokens:,} tokens ({blocks} blocks spread over the split): {what} of "
        f"{sample * block_tokens:,} would take about {cost}, more than {FINAL_EVAL_SHARE:.0%} of the training "
        "time; --final-eval sample or full evaluates more"
    )
    return EvalChoice(blocks, False, note)
