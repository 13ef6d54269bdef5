"""What happens during training, as lts events and timings: a transformers TrainerCallback that
reports steps, losses, throughput (optimizer steps only), evaluations and checkpoints, saves a
checkpoint every `save_minutes` besides every `save_every` steps, says after the first steps what
the whole budget will cost here, and a Trainer that clocks its evaluations and checkpoints."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lts_cli import processes, workspace
from lts_cli.checkpoints import record_checkpoint
from lts_cli.train_budget import EVAL_SPEEDUP, describe_duration, steps_within
from lts_cli.views import Event, OnEvent

ESTIMATE_AFTER_S = 20.0  # say what the budget costs after this much stepping (or ESTIMATE_AFTER_STEPS steps)
ESTIMATE_AFTER_STEPS = 3
LONG_S = 86400.0  # a budget longer than this gets a suggestion for one of an hour


def perplexity(loss: float) -> float:
    return math.exp(min(loss, 50.0))


@dataclass
class Clock:
    """Where a training's wall time went, in seconds."""

    tokenize: float = 0.0
    train: float = 0.0  # optimizer steps (forward, backward, update, the next batch)
    evaluate: float = 0.0
    checkpoint: float = 0.0
    other: float = 0.0  # building the model, calibrating --max-time, publishing the folder

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.__dict__.items()}


@dataclass
class Budget:
    """What the estimate needs to know of the run."""

    max_steps: int
    tokens_per_step: int
    eval_every: int
    eval_tokens: int  # of each periodic evaluation
    max_time: str | None = None  # given: the steps were set to fit it, no suggestion needed


@dataclass
class Progress:
    """Trainer events -> lts events (step, loss, tokens/s, evaluations, the cost estimate); saves by
    time; remembers the untrained loss. A TrainerCallback once made by `callback`."""

    emit: OnEvent
    budget: Budget
    work: Path | None
    clock: Clock
    save_minutes: float
    save_at_end: bool = True
    first_step: int | None = None
    last_loss: float | None = None
    step_started: float = 0.0
    steps: int = 0
    last_save: float = field(default_factory=time.perf_counter)
    estimated: bool = False
    substeps: int = 0  # micro-batches of the current step done
    first_substep_s: float = 0.0
    evaluations: int = 0  # periodic ones, on the fixed sample

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.first_step = state.global_step
        self.last_save = time.perf_counter()
        step, steps = state.global_step, state.max_steps
        resumed = f" (resuming at step {step})" if step else ""
        self.emit(Event("start", f"training for {steps:,} steps{resumed}", total=steps, done=step, label="training",
                        data=step))  # fmt: skip

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.step_started = time.perf_counter()
        self.substeps = 0

    def on_substep_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """A micro-batch of a step done: a step that takes minutes is estimated from its micro-batches
        after the first (which warms up: allocations, page faults)."""
        self.substeps += 1
        elapsed = time.perf_counter() - self.step_started
        if self.substeps == 1:
            self.first_substep_s = elapsed
        elif not self.estimated and self.clock.train + elapsed >= ESTIMATE_AFTER_S:
            step_s = (elapsed - self.first_substep_s) / (self.substeps - 1) * args.gradient_accumulation_steps
            micro = f"{self.substeps - 1} micro-batch(es) of {args.gradient_accumulation_steps} in the first step"
            self._estimate(state.global_step, step_s, micro)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        now = time.perf_counter()
        self.clock.train += now - self.step_started
        self.steps += 1
        step = state.global_step
        if step >= state.max_steps:
            control.should_evaluate = False  # lts evaluates once at the end itself, with the final budget
            control.should_save = control.should_save and self.save_at_end
        elif processes.agree(now - self.last_save >= 60 * self.save_minutes):  # saving is collective under DDP
            control.should_save = True
        rate = self.train_tokens_per_s() or 0.0
        loss = f"loss {self.last_loss:.3f}, " if self.last_loss is not None else ""
        self.emit(Event("step", done=step, label=f"step {step}: {loss}{rate:,.0f} tok/s", data=step))
        if not self.estimated and (self.steps >= ESTIMATE_AFTER_STEPS or self.clock.train >= ESTIMATE_AFTER_S):
            self._estimate(step, self.clock.train / self.steps, f"{self.steps} step(s)")

    def _estimate(self, step: int, step_s: float, measured_on: str) -> None:
        self.estimated = True
        self.emit(Event("estimate", self.estimate(step, step_s, measured_on), data=step_s))

    def estimate(self, step: int, step_s: float, measured_on: str) -> str:
        """The measured throughput and what the whole budget takes at it; a budget over a day gets the
        flags for one of an hour."""
        b = self.budget
        rate = b.tokens_per_step / step_s
        evals = (b.max_steps - step) // b.eval_every * b.eval_tokens / (EVAL_SPEEDUP * rate)
        whole = b.max_steps * step_s + evals
        line = (f"{rate:,.0f} training tokens/s here: {b.max_steps:,} steps of {b.tokens_per_step:,} tokens take "
                f"about {describe_duration(whole)} (measured on {measured_on})")  # fmt: skip
        if whole > LONG_S and b.max_time is None:
            hour = steps_within(3600 * b.max_steps * step_s / whole, step_s)
            line += (f"; a budget of 1 h here: --max-steps {hour:,} (or --tokens {hour * b.tokens_per_step:,}, "
                     "or --max-time 1h)")  # fmt: skip
        return line

    def train_tokens_per_s(self) -> float | None:
        return self.steps * self.budget.tokens_per_step / self.clock.train if self.clock.train > 0 else None

    def eval_tokens_per_s(self) -> float | None:
        """Measured on the periodic evaluations so far (None before the first)."""
        if not self.evaluations or self.clock.evaluate <= 0:
            return None
        return self.evaluations * self.budget.eval_tokens / self.clock.evaluate

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.last_loss = float(logs["loss"])

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kwargs: Any
    ) -> None:
        loss = (metrics or {}).get("eval_loss")
        if loss is None:  # the final evaluations, which lts reports itself
            return
        if state.global_step == 0 and self.work is not None:
            workspace.atomic_write_json(self.work / "initial.json", {"val_loss": loss})
        self.evaluations += 1
        line = (f"step {state.global_step}: validation loss {loss:.4f}, perplexity {perplexity(loss):,.2f} "
                f"({self.budget.eval_tokens:,} tokens)")  # fmt: skip
        self.emit(Event("eval", line, data=loss))

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if args.should_save:  # the process that wrote the checkpoint (process 0 under DDP)
            record_checkpoint(Path(args.output_dir) / f"checkpoint-{state.global_step}")
        self.last_save = time.perf_counter()
        self.emit(Event("saved", data=state.global_step))

    def initial_val_loss(self) -> float | None:
        path = self.work / "initial.json" if self.work else None
        return json.loads(path.read_text())["val_loss"] if path and path.is_file() else None


def callback(
    emit: OnEvent, budget: Budget, work: Path | None, clock: Clock, save_minutes: float, save_at_end: bool = True
) -> Any:
    """A `Progress` that is also a transformers TrainerCallback (transformers loads only to train)."""
    from transformers import TrainerCallback

    class Callback(Progress, TrainerCallback):
        pass

    return Callback(emit, budget, work, clock, save_minutes, save_at_end)


def timed_trainer(clock: Clock) -> Callable[..., Any]:
    """transformers.Trainer, with its evaluations and checkpoint writes added to `clock`."""
    import transformers

    class Timed(transformers.Trainer):
        def evaluate(self, *args: Any, **kwargs: Any) -> dict[str, float]:
            start = time.perf_counter()
            try:
                return super().evaluate(*args, **kwargs)
            finally:
                clock.evaluate += time.perf_counter() - start

        def _save_checkpoint(self, *args: Any, **kwargs: Any) -> None:
            start = time.perf_counter()
            try:
                super()._save_checkpoint(*args, **kwargs)
            finally:
                clock.checkpoint += time.perf_counter() - start

    return Timed
