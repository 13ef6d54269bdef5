"""How a training runs on this machine (torch): the precision `auto` means here, the micro-batch split
that fits the free memory (RAM on the CPU, device memory on CUDA), and for `--max-time` the step count
that fits the time, measured on a few steps. A plan is kept in the training folder, so a resumed run
goes on exactly as it began."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lts_cli import train_budget, workspace
from lts_cli.errors import ConfigError, LtsError
from lts_cli.modeling import gpt2_config
from lts_cli.space import GPT2_EOS_ID, Arch

PLAN_FILE = workspace.TRAINING_PLAN
CALIBRATION_STEPS, CALIBRATION_S = 3, 20.0  # --max-time: time this many steps, or steps for this long
TIME_RESERVE = 0.10  # of --max-time, kept for the final evaluation and the last checkpoint


@dataclass(frozen=True)
class Plan:
    precision: str  # fp32 | bf16 | fp16 (`auto` resolved)
    device: str  # cpu | cuda
    micro: int  # sequences per forward pass
    accumulation: int  # forward passes per optimizer step (the user's own accumulation included)
    eval_batch: int
    max_steps: int
    free_bytes: int
    step_gb: float  # the estimated peak of a training step at `micro`
    batch_gb: float  # the same for the whole per-process batch

    def note(self, batch: int) -> str | None:
        """How the batch was split, when it was."""
        if self.micro == batch:
            return None
        return (
            f"batch {batch} as {batch // self.micro} x {self.micro} to fit {self.free_bytes / 1e9:.0f} GB free "
            f"(a step of {batch} would need about {self.batch_gb:.1f} GB, one of {self.micro} about "
            f"{self.step_gb:.1f} GB); gradients are accumulated, so the effective batch is the same"
        )


def resolve_precision(asked: str, cuda: bool, bf16_ok: bool) -> str:
    """`auto`: bf16 on a CUDA device that supports it, else fp16 on CUDA, fp32 on the CPU. fp16 on the
    CPU is refused (bf16 works there)."""
    if asked == "auto":
        return ("bf16" if bf16_ok else "fp16") if cuda else "fp32"
    if asked == "fp16" and not cuda:
        raise ConfigError(["precision"], "{0} fp16 needs a CUDA device; on the CPU use bf16 or fp32")
    if asked == "bf16" and cuda and not bf16_ok:
        raise ConfigError(["precision"], "{0} bf16 is not supported by this GPU; use fp16 or fp32")
    return asked


def free_memory(cuda: bool) -> int:
    """Bytes free for this process's tensors: the device's on CUDA, else the machine's available RAM."""
    if cuda:
        import torch

        return int(torch.cuda.mem_get_info()[0])
    import psutil

    return int(psutil.virtual_memory().available)


def make(
    arch: Arch,
    config: Any,
    work: Path,
    world: int,
    calibrate: Callable[[Plan], float] | None = None,
) -> Plan:
    """The plan of a new training (the one in `work` for a resumed one). `calibrate(plan)`: the
    seconds of one optimizer step, measured (for --max-time)."""
    recorded = _recorded(work)
    if recorded is not None:
        return recorded
    import torch

    cuda = torch.cuda.is_available()
    precision = resolve_precision(config.precision, cuda, cuda and torch.cuda.is_bf16_supported())
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world))  # processes sharing this machine's memory
    free = free_memory(cuda)
    fit = train_budget.split(
        arch, config.seq_len, config.batch_size, config.gradient_accumulation_steps, free, precision, local
    )
    plan = Plan(precision, "cuda" if cuda else "cpu", fit.micro, fit.accumulation, fit.eval_batch, config.max_steps,
                free, fit.step.total / 1e9, fit.needed_for_batch / 1e9)  # fmt: skip
    if config.max_time is not None and calibrate is not None:
        seconds = train_budget.parse_duration(config.max_time)
        started = time.perf_counter()
        step_s = calibrate(plan)
        left = seconds * (1 - TIME_RESERVE) - (time.perf_counter() - started)
        if left < step_s:
            raise LtsError(
                f"--max-time {config.max_time} leaves no time to train: one step takes about {step_s:.1f} s here; "
                "give more time or a smaller --batch-size/--seq-len"
            )
        plan = Plan(**{**asdict(plan), "max_steps": train_budget.steps_within(left, step_s)})
    return plan


def keep(plan: Plan, work: Path) -> None:
    workspace.atomic_write_json(work / PLAN_FILE, asdict(plan))


def _recorded(work: Path) -> Plan | None:
    path = work / PLAN_FILE
    if not path.is_file():
        return None
    try:
        return Plan(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None  # a damaged plan: made again


def calibrator(model_factory: Callable[[], Any], batches: Callable[[int], Any]) -> Callable[[Plan], float]:
    """A `calibrate` for `make`: optimizer steps of a fresh model on training batches, timed after a
    warm-up step; CALIBRATION_STEPS of them or CALIBRATION_S of stepping, whichever comes first."""
    import torch

    def calibrate(plan: Plan) -> float:
        model = model_factory().to(plan.device)
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(plan.precision)
        times: list[float] = []
        for step in range(CALIBRATION_STEPS + 1):
            start = time.perf_counter()
            for _ in range(plan.accumulation):
                ids = batches(plan.micro).to(plan.device)
                with torch.autocast(plan.device, dtype=dtype, enabled=dtype is not None):
                    loss = model(input_ids=ids, labels=ids).loss
                (loss / plan.accumulation).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            took = time.perf_counter() - start
            if step or took >= CALIBRATION_S:  # the first step warms up (allocations, kernels) unless it is long
                times.append(took)
            if sum(times) >= CALIBRATION_S:
                break
        del model, optimizer
        return sum(times) / len(times)

    return calibrate


def quiet(transformers: Any, threads: int) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def model(arch: Arch, dropout: float) -> Any:
    import transformers

    p = dropout
    return transformers.GPT2LMHeadModel(
        gpt2_config(arch, resid_pdrop=p, embd_pdrop=p, attn_pdrop=p, bos_token_id=GPT2_EOS_ID, eos_token_id=GPT2_EOS_ID)
    )


def batches(blocks: Any) -> Callable[[int], Any]:
    """`micro` -> a batch of training blocks (for calibrating --max-time)."""
    import torch

    def batch(micro: int) -> Any:
        return torch.stack([blocks[i % len(blocks)]["input_ids"] for i in range(micro)])

    return batch


def arguments(config: Any, plan: Plan, work: Path, world: int, eval_on_start: bool) -> Any:
    """The Trainer's arguments for `config` run as `plan` says."""
    import transformers

    cuda = plan.device == "cuda"
    return transformers.TrainingArguments(
        output_dir=str(work),
        max_steps=plan.max_steps,
        per_device_train_batch_size=plan.micro,
        per_device_eval_batch_size=plan.eval_batch,
        gradient_accumulation_steps=plan.accumulation,
        learning_rate=config.lr,
        weight_decay=config.weight_decay,
        adam_beta1=config.adam_beta1,
        adam_beta2=config.adam_beta2,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_steps,
        max_grad_norm=config.max_grad_norm,
        optim="adamw_torch",
        eval_strategy="steps",
        eval_steps=config.eval_every,
        eval_on_start=eval_on_start,  # the untrained model's validation loss, for comparison
        save_strategy="steps",
        save_steps=config.save_every,
        save_total_limit=config.keep_checkpoints,
        logging_steps=config.log_every,
        report_to="none",
        disable_tqdm=True,
        seed=config.seed,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        use_cpu=not cuda,
        bf16=plan.precision == "bf16",
        fp16=plan.precision == "fp16",
        ddp_backend=None if cuda or world == 1 else "gloo",
    )
