"""What happens during training, as lts events: a transformers TrainerCallback that reports steps,
losses, throughput (optimizer steps only), evaluations and checkpoints, and remembers the untrained
validation loss."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from lts_cli import workspace
from lts_cli.checkpoints import record_checkpoint
from lts_cli.views import Event, OnEvent


def perplexity(loss: float) -> float:
    return math.exp(min(loss, 50.0))


class Progress:
    """Trainer events -> lts events (step, loss, tokens/s, evaluations); remembers the untrained loss.
    A TrainerCallback once made by `callback`."""

    def __init__(self, emit: OnEvent, tokens_per_step: int, work: Path | None) -> None:
        self.emit = emit
        self.tokens_per_step = tokens_per_step
        self.work = work
        self.first_step: int | None = None
        self.last_loss: float | None = None
        self.started = time.perf_counter()
        self.step_started = 0.0
        self.step_seconds = 0.0  # optimizer steps only, evaluations and checkpoints excluded
        self.steps = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.first_step = state.global_step
        self.started = time.perf_counter()
        step, steps = state.global_step, state.max_steps
        resumed = f" (resuming at step {step})" if step else ""
        self.emit(Event("start", f"training for {steps} steps{resumed}", total=steps, done=step, label="training",
                        data=step))  # fmt: skip

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.step_started = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.step_seconds += time.perf_counter() - self.step_started
        self.steps += 1
        rate = self.train_tokens_per_s() or 0.0
        loss = f"loss {self.last_loss:.3f}, " if self.last_loss is not None else ""
        step = state.global_step
        self.emit(Event("step", done=step, label=f"step {step}: {loss}{rate:,.0f} tok/s", data=step))

    def train_tokens_per_s(self) -> float | None:
        return self.steps * self.tokens_per_step / self.step_seconds if self.step_seconds > 0 else None

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.last_loss = float(logs["loss"])

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kwargs: Any
    ) -> None:
        loss = (metrics or {}).get("eval_loss")
        if loss is None:
            return
        if state.global_step == 0 and self.work is not None:
            workspace.atomic_write_json(self.work / "initial.json", {"val_loss": loss})
        line = f"step {state.global_step}: validation loss {loss:.4f}, perplexity {perplexity(loss):,.2f}"
        self.emit(Event("eval", line, data=loss))

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if args.should_save:  # the process that wrote the checkpoint (process 0 under DDP)
            record_checkpoint(Path(args.output_dir) / f"checkpoint-{state.global_step}")
        self.emit(Event("saved", data=state.global_step))

    def initial_val_loss(self) -> float | None:
        path = self.work / "initial.json" if self.work else None
        return json.loads(path.read_text())["val_loss"] if path and path.is_file() else None


def callback(emit: OnEvent, tokens_per_step: int, work: Path | None) -> Any:
    """A `Progress` that is also a transformers TrainerCallback (transformers loads only to train)."""
    from transformers import TrainerCallback

    class Callback(Progress, TrainerCallback):
        pass

    return Callback(emit, tokens_per_step, work)
