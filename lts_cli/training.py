"""Train an architecture with the Hugging Face Trainer into a workspace model folder (torch).

models/<id>/                       the finished model, moved into place only when complete:
  config.json, model.safetensors   Hugging Face `save_pretrained` layout (tied head stored once)
  tokenizer files                  the GPT-2 tokenizer it was trained with
  arch.json                        the architecture (gallery-style config)
  train_config.yaml, metrics.json  the effective training config; losses, perplexities, tokens, time
models/.<id>.training/             while training: checkpoints a re-run resumes from, train.json (what
                                   the run was asked) and plan.json (how it runs here: train_plan.py)

A re-run resumes from the newest checkpoint that is complete and whose contents read (checkpoints.py)
and says which newer ones it skipped and why. Checkpoints are written every `save_every` steps or
`save_minutes`, whichever comes first, and at the end.

Evaluation costs a bounded share: periodic validation (every `eval_every` steps, none at the start
unless `eval_on_start`) runs on a fixed sample of `eval_tokens` tokens, the same blocks every time;
the final validation (and with `test`, the test split) on the whole split when that costs at most
10% of the training time, else on the sample, else on what fits that share (train_budget.final_eval).

Runs unchanged under `torchrun --nproc_per_node N` (the Trainer's DDP; gloo on CPU): every process
trains, process 0 alone writes the model folder, and what a process would decide from its own
measurements (the plan, when to save, the final evaluation's size) is process 0's (processes.py).
"""

from __future__ import annotations

import math
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

from lts_cli import folders, processes, train_budget, train_eval, train_plan, train_progress, workspace
from lts_cli.checkpoints import SIGNATURE_FILE, resume_point
from lts_cli.config import as_plain, at_least, positive
from lts_cli.corpus import Corpus, CorpusOptions, block_count, blocks_dataset, token_folder, tokenize
from lts_cli.errors import ConfigError, LtsError, invalid
from lts_cli.gallery import Resolved
from lts_cli.modeling import model_id_for, save_tokenizer, write_card
from lts_cli.sampling import generation_defaults
from lts_cli.space import GPT2_EOS_ID, GPT2_VOCAB_SIZE, Arch
from lts_cli.train_progress import Budget, Clock, perplexity
from lts_cli.views import Block, Event, JsonObject, Lines, OnEvent

METRICS_FILE = workspace.TRAINED_MARKER  # written last into a finished model folder


@dataclass(frozen=True)
class TrainConfig:
    """Training with the Hugging Face Trainer; defaults are the published ones (configs/train.yaml)."""

    max_steps: int = 30000
    batch_size: int = 64  # per device: split into micro-batches when a step of it does not fit the memory
    gradient_accumulation_steps: int = 1
    seq_len: int = 1024
    lr: float = 6e-4
    weight_decay: float = 0.1
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_steps: int = 150
    max_grad_norm: float = 1.0
    dropout: float = 0.1
    eval_every: int = 500
    eval_tokens: int = 65536  # periodic validation: a fixed sample of this many tokens; 0: the whole split
    final_eval: Literal["auto", "full", "sample"] = "auto"
    eval_on_start: bool = False
    test: bool = False  # evaluate the test split once, at the end
    save_every: int = 500
    save_minutes: float = 10.0
    keep_checkpoints: int = 2
    log_every: int = 10
    seed: int = 42
    threads: int = 0  # torch intra-op threads; 0: torch's default (all cores)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    max_time: str | None = None  # "2h", "30m": the steps that fit this long, measured here (replaces max_steps)

    HELP: ClassVar[dict[str, str]] = {  # the fields a command line sets, in one sentence each (--help)
        "max_steps": "Optimizer steps.",
        "batch_size": "Blocks per step per process.",
        "seq_len": "Tokens per block.",
        "lr": "Peak learning rate.",
        "warmup_steps": "Linear warm-up steps.",
        "seed": "Random seed.",
        "eval_every": "Steps between validation evaluations.",
        "eval_tokens": "Validation tokens of each evaluation: a fixed sample (0: the whole split).",
        "final_eval": "auto: the whole validation split if it costs at most 10% of training, else less.",
        "eval_on_start": "Also evaluate the untrained model.",
        "test": "Evaluate the test split once, at the end.",
        "save_every": "Steps between checkpoints.",
        "save_minutes": "Minutes between checkpoints (whichever comes first).",
        "precision": "auto: bf16 (or fp16) on CUDA, fp32 on the CPU.",
        "max_time": "Train for this long (2h, 30m): the steps that fit, measured here.",
        "threads": "Torch threads (0: all cores).",
    }

    def __post_init__(self) -> None:
        at_least(self, 1, "max_steps", "batch_size", "gradient_accumulation_steps", "seq_len", "eval_every")
        at_least(self, 1, "save_every", "log_every", "keep_checkpoints")
        positive(self, "lr", "save_minutes")
        at_least(self, 0, "weight_decay", "warmup_steps", "max_grad_norm", "eval_tokens", "threads")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise invalid(name, "must be in [0, 1)", getattr(self, name))
        if not 0 <= self.dropout < 1:
            raise invalid("dropout", "must be in [0, 1)", self.dropout)
        if self.max_time is not None:
            try:
                seconds = train_budget.parse_duration(self.max_time)
            except ValueError as exc:
                raise invalid("max_time", "is a duration such as 2h, 30m or 90s", self.max_time) from exc
            if seconds <= 0:
                raise invalid("max_time", "must be more than 0", self.max_time)

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.gradient_accumulation_steps * self.seq_len * processes.rank()[1]

    def for_tokens(self, tokens: int | None) -> TrainConfig:
        """The same budget in steps for `tokens` training tokens (`--tokens`), warm-up scaled with it."""
        if tokens is None:
            return self
        steps = max(1, math.ceil(tokens / self.tokens_per_step))
        return replace(self, max_steps=steps, warmup_steps=min(self.warmup_steps, max(1, steps // 10)))


@dataclass
class TrainResult:
    model_id: str
    path: Path
    metrics: JsonObject  # as metrics.json holds them

    def to_dict(self) -> JsonObject:
        return {"model": self.model_id, "path": str(self.path), **self.metrics}

    def view(self) -> list[Block]:
        m = self.metrics
        lines = []
        evaluated = m["evaluated_tokens"]
        if m["initial_val_perplexity"] is not None:
            lines.append(f"  validation perplexity untrained  {m['initial_val_perplexity']:,.1f} "
                         f"({evaluated.get('initial_validation', 0):,} tokens)")  # fmt: skip
        lines.append(f"  validation loss {m['val_loss']:.4f}, perplexity {m['val_perplexity']:,.2f} "
                     f"({evaluated['validation']:,} tokens)")  # fmt: skip
        if m["test_loss"] is not None:
            lines.append(f"  test loss       {m['test_loss']:.4f}, perplexity {m['test_perplexity']:,.2f} "
                         f"({evaluated['test']:,} tokens)")  # fmt: skip
        if m["tokens_per_second"]:
            lines.append(f"  {m['tokens_per_second']:,.0f} training tokens/s ({m['world_size']} process(es), "
                         f"{m['precision']})")  # fmt: skip
        t = m["seconds"]
        lines.append(f"  {sum(t.values()):,.0f} s: training steps {t['train']:,.1f}, evaluation {t['evaluate']:,.1f}, "
                     f"checkpoints {t['checkpoint']:,.1f}, tokenizing {t['tokenize']:,.1f}, "
                     f"other {t['other']:,.1f}")  # fmt: skip
        lines.append(f'  saved to {self.path}; try `lts generate {shlex.quote(self.model_id)} "ROMEO:"`')
        return [Lines(lines, f"{self.model_id} trained: {m['steps']:,} steps, {m['tokens_seen']:,} tokens")]


def is_main_process() -> bool:
    return processes.rank()[0] == 0


def train_reference(
    ref: str,
    config: TrainConfig,
    corpus: CorpusOptions,
    name: str | None = None,
    restart: bool = False,
    on_event: OnEvent | None = None,
) -> TrainResult:
    """`lts train REF`: the architecture `ref` names (references.architecture), remembered in the
    workspace, trained on the corpus the options choose."""
    from lts_cli.references import architecture
    from lts_cli.store import open_store

    if name is not None:
        workspace.check_name(name)
    with open_store() as store:
        target = architecture(ref, store)
        store.put_arch(target.arch, "train")
    return train(target, config, corpus.load(), name, restart, on_event)


def train(
    target: Resolved,
    config: TrainConfig,
    corpus: Corpus,
    name: str | None = None,
    restart: bool = False,
    on_event: OnEvent | None = None,
    models_root: Path | None = None,
    keep_model: bool = True,
) -> TrainResult:
    """Train `target.arch` on `corpus`; resumes an interrupted run of the same command by itself.
    `models_root`: where the model folder goes (the workspace's models/ by default). Without
    `keep_model` only the metrics are wanted (lts proxy): no model folder, no checkpoint at the end."""
    model_id = name or model_id_for(target)
    work = (models_root or workspace.models_dir()) / f".{model_id}.training"
    # `lts cache prune` leaves them alone meanwhile; under torchrun, the processes join one group
    with workspace.in_use(token_folder(corpus), work), processes.group():
        emit = on_event or (lambda event: None)
        return _train(target, config, corpus, model_id, restart, emit, models_root, keep_model)


def _train(
    target: Resolved,
    config: TrainConfig,
    corpus: Corpus,
    model_id: str,
    restart: bool,
    emit: OnEvent,
    models_root: Path | None,
    keep_model: bool,
) -> TrainResult:
    import transformers

    def note(text: str) -> None:
        emit(Event("note", text))

    arch, clock, (rank, world) = target.arch, Clock(), processes.rank()
    models = models_root or workspace.models_dir()
    final, work = models / model_id, models / f".{model_id}.training"
    _check(arch, config, final, work, restart)
    if restart and work.exists() and rank == 0:
        folders.remove_folder(work, note)
    processes.wait_for_all()  # none looks into the work folder before process 0 has cleared it
    started = time.perf_counter()
    tokens = tokenize(corpus)
    clock.tokenize = time.perf_counter() - started
    _check_tokens(corpus, tokens, config.seq_len, emit)

    signature = {"arch": arch.to_config(), "train": as_plain(config), "corpus": corpus.key, "world_size": world}
    checkpoint, skipped = resume_point(work, signature, arch, rank)
    checkpoint = processes.agree(checkpoint)  # all resume from the same step
    for folder, problem in skipped:
        then = f"resuming from {checkpoint.name}" if checkpoint else "starting from step 0"
        emit(Event("checkpoint-skipped", f"{folder.name} is incomplete ({problem}); {then}",
                   data={"checkpoint": folder.name, "problem": problem, "resume_from": checkpoint}))  # fmt: skip
    started = time.perf_counter()
    train_plan.quiet(transformers, config.threads)
    train_blocks = blocks_dataset(tokens["train"], config.seq_len)
    calibrate = train_plan.calibrator(lambda: train_plan.model(arch, config.dropout), train_plan.batches(train_blocks))
    # the free memory and --max-time's timing are each process's own: all take process 0's plan
    plan = processes.agree(train_plan.make(arch, config, work, world, calibrate))
    if rank == 0:
        train_plan.keep(plan, work)
    if (split := plan.note(config.batch_size)) is not None:
        note(split)
    if config.max_time is not None:
        note(f"--max-time {config.max_time}: {plan.max_steps:,} steps fit it here")
    transformers.set_seed(config.seed)
    trainer_class = train_progress.timed_trainer(clock)
    sample = train_eval.sample(tokens["validation"], config.seq_len, config.eval_tokens)
    budget = Budget(plan.max_steps, config.tokens_per_step, config.eval_every, len(sample) * config.seq_len,
                    config.max_time)  # fmt: skip
    progress = train_progress.callback(emit, budget, work if rank == 0 else None, clock, config.save_minutes,
                                       save_at_end=keep_model)  # fmt: skip
    trainer = trainer_class(
        model=train_plan.model(arch, config.dropout),
        args=train_plan.arguments(config, plan, work, world, eval_on_start=config.eval_on_start and checkpoint is None),
        train_dataset=train_blocks,
        eval_dataset=sample,
        callbacks=[progress],
    )
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # we render progress ourselves
    clock.other += time.perf_counter() - started
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    losses, evaluated = train_eval.final(trainer, tokens, config, plan, progress, emit)
    initial = progress.initial_val_loss()
    if initial is not None:  # on the periodic evaluations' sample
        evaluated = {"initial_validation": len(sample) * config.seq_len, **evaluated}
    trained_steps = plan.max_steps - (progress.first_step or 0)
    step_s = clock.train / max(1, progress.steps)
    metrics = {
        "initial_val_loss": initial,
        "initial_val_perplexity": perplexity(initial) if initial is not None else None,
        "train_loss": progress.last_loss if progress.last_loss is not None else output.training_loss,
        "train_loss_mean": output.training_loss,
        "val_loss": losses["validation"],
        "val_perplexity": perplexity(losses["validation"]),
        "test_loss": losses.get("test"),
        "test_perplexity": perplexity(losses["test"]) if "test" in losses else None,
        "evaluated_tokens": evaluated,  # what each loss above was computed on
        "steps": plan.max_steps,
        "tokens_seen": plan.max_steps * config.tokens_per_step,
        "tokens_per_second": progress.train_tokens_per_s(),
        "wall_tokens_per_second": trained_steps * config.tokens_per_step / (trained_steps * step_s)
        if trained_steps and step_s
        else None,
        "seconds": clock.to_dict(),  # this session's wall time, by what it went to
        "resumed_from_step": progress.first_step or None,
        "world_size": world,
        "precision": plan.precision,
        "micro_batch": plan.micro,
        "gradient_accumulation": plan.accumulation,
        "corpus": corpus.name,
        "corpus_tokens": {s: int(a.size) for s, a in tokens.items()},
    }
    if rank == 0:
        started = time.perf_counter()
        if keep_model:
            _publish(trainer.model, arch, config, metrics, final, work, note)
        else:
            folders.remove_folder(work, note)
        clock.other += time.perf_counter() - started
        metrics["seconds"] = clock.to_dict()
    result = TrainResult(model_id, final, metrics)
    emit(Event("done", data=result))
    return result


def _check(arch: Arch, config: TrainConfig, final: Path, work: Path, restart: bool) -> None:
    if config.seq_len > arch.n_positions:
        raise ConfigError(["seq_len"], f"{{0}} {config.seq_len} exceeds the model's n_positions ({arch.n_positions})")
    if arch.vocab_size < GPT2_VOCAB_SIZE:
        raise LtsError(f"vocab_size {arch.vocab_size} is smaller than the GPT-2 tokenizer's {GPT2_VOCAB_SIZE}")
    folders.check_replaceable(final, METRICS_FILE, "a model trained by lts", force=True)
    if final.exists() and not restart and not work.exists():
        raise ConfigError(
            ["restart", "name"],
            f"{final.name} is trained already ({final}); {{0}} trains it again "
            "(the old model stays until the new one is done), or {1} trains another copy",
        )
    if work.exists() and not (work / SIGNATURE_FILE).is_file():
        raise LtsError(f"{work} is not an lts training folder (no {SIGNATURE_FILE}); nothing was touched; move it away")


def _check_tokens(corpus: Corpus, tokens: dict[str, Any], seq_len: int, emit: OnEvent) -> None:
    sizes = {split: int(a.size) for split, a in tokens.items()}
    line = f"{corpus.name}: {sizes['train']:,} training, {sizes['validation']:,} validation, {sizes['test']:,} test"
    emit(Event("tokens", line + " tokens", data=sizes))
    for split in ("train", "validation"):
        if block_count(tokens[split], seq_len) < 1:
            raise LtsError(
                f"{corpus.name}: the {split} split has {tokens[split].size} tokens, fewer than one block of "
                f"--seq-len {seq_len}; add text or lower --seq-len"
            )


def _publish(
    model: Any,
    arch: Arch,
    config: TrainConfig,
    metrics: JsonObject,
    final: Path,
    work: Path,
    on_note: Callable[[str], None],
) -> None:
    """Write the model folder beside its final place, then rename it there (never half a model). The
    folder follows the Hub's conventions: a model card, lts's sampling defaults in
    generation_config.json, and a tokenizer that knows the model's context."""
    import yaml

    from lts_cli.tokenizer import shipped as tokenizer

    with folders.staged_folder(final, METRICS_FILE, on_note) as tmp:
        model.generation_config = generation_defaults(GPT2_EOS_ID, arch.n_positions)
        model.save_pretrained(tmp)
        save_tokenizer(tokenizer(), tmp, arch.n_positions)
        workspace.atomic_write_json(tmp / workspace.ARCH_FILE, arch.to_config())
        workspace.atomic_write_text(tmp / "train_config.yaml", yaml.safe_dump(as_plain(config), sort_keys=False))
        _card(tmp, final.name, arch, config, metrics)
        workspace.atomic_write_json(tmp / METRICS_FILE, metrics)
    folders.remove_folder(work, on_note)


def _card(folder: Path, model_id: str, arch: Arch, config: TrainConfig, metrics: JsonObject) -> None:
    def ppl(key: str) -> str:
        return f"{metrics[key]:,.2f}" if metrics.get(key) is not None else "-"

    facts = [
        ("training data", f"{metrics['corpus']} ({metrics['corpus_tokens'].get('train', 0):,} training tokens)"),
        ("training", f"{metrics['steps']:,} steps, {metrics['tokens_seen']:,} tokens, sequence {config.seq_len}"),
        ("optimizer", f"AdamW, lr {config.lr:g}, {config.lr_scheduler} schedule, {config.warmup_steps} warm-up steps"),
        (
            "precision",
            f"{metrics['precision']} (batch {config.batch_size} as {metrics['gradient_accumulation']} x "
            f"{metrics['micro_batch']} per step and process)",
        ),
        ("validation perplexity", f"{ppl('val_perplexity')} ({metrics['evaluated_tokens']['validation']:,} tokens)"),
        ("test perplexity", ppl("test_perplexity")),
        ("perplexity before training", ppl("initial_val_perplexity")),
    ]
    use = f"""With transformers (samples with lts's defaults: temperature 0.8, top-p 0.95, 128 new tokens):

```python
from transformers import pipeline
generate = pipeline("text-generation", "path/to/{model_id}")
print(generate("ROMEO:")[0]["generated_text"])
```

With lts: `lts generate {model_id} "ROMEO:"`, and `lts export {model_id} --quantize int8` for ONNX Runtime."""
    about = f"A GPT-2 decoder trained by `lts train` (Lightweight Transformer Search), model id `{model_id}`."
    write_card(folder, model_id, arch, about, facts, use)
