"""Train an architecture with the Hugging Face Trainer into a workspace model folder (torch).

models/<id>/                       the finished model, moved into place only when complete:
  config.json, model.safetensors   Hugging Face `save_pretrained` layout (tied head stored once)
  tokenizer files                  the GPT-2 tokenizer it was trained with
  arch.json                        the architecture (gallery-style config)
  train_config.yaml, metrics.json  the effective training config; losses, perplexities, tokens, time
models/.<id>.training/             while training: checkpoints a re-run resumes from, and train.json

A re-run resumes from the newest checkpoint that is complete and whose contents read (checkpoints.py)
and says which newer ones it skipped and why.

Runs unchanged under `torchrun --nproc_per_node N` (the Trainer's DDP; gloo on CPU): every process
trains, process 0 alone writes the model folder.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lts_cli import folders, train_progress, workspace
from lts_cli.checkpoints import SIGNATURE_FILE, resume_point
from lts_cli.config import as_plain, at_least, positive
from lts_cli.corpus import Corpus, CorpusOptions, block_count, blocks_dataset, token_folder, tokenize
from lts_cli.errors import ConfigError, LtsError, invalid
from lts_cli.gallery import Resolved
from lts_cli.modeling import gpt2_config, model_id_for, save_tokenizer, write_card
from lts_cli.sampling import generation_defaults
from lts_cli.space import GPT2_EOS_ID, GPT2_VOCAB_SIZE, Arch
from lts_cli.train_progress import perplexity
from lts_cli.views import Block, Event, JsonObject, Lines, OnEvent

METRICS_FILE = workspace.TRAINED_MARKER  # written last into a finished model folder


@dataclass(frozen=True)
class TrainConfig:
    """Training with the Hugging Face Trainer; defaults are the published ones (configs/train.yaml)."""

    max_steps: int = 30000
    batch_size: int = 64  # per device
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
    eval_batches: int = 0  # batches of the validation and test splits evaluated; 0: all
    save_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 10
    seed: int = 42
    threads: int = 0  # torch intra-op threads; 0: torch's default (all cores)

    def __post_init__(self) -> None:
        at_least(self, 1, "max_steps", "batch_size", "gradient_accumulation_steps", "seq_len", "eval_every")
        at_least(self, 1, "save_every", "log_every", "keep_checkpoints")
        positive(self, "lr")
        at_least(self, 0, "weight_decay", "warmup_steps", "max_grad_norm", "eval_batches", "threads")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise invalid(name, "must be in [0, 1)", getattr(self, name))
        if not 0 <= self.dropout < 1:
            raise invalid("dropout", "must be in [0, 1)", self.dropout)


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
        if m["initial_val_perplexity"] is not None:
            lines.append(f"  validation perplexity untrained  {m['initial_val_perplexity']:,.1f}")
        lines.append(f"  validation loss {m['val_loss']:.4f}, perplexity {m['val_perplexity']:,.2f}")
        lines.append(f"  test loss       {m['test_loss']:.4f}, perplexity {m['test_perplexity']:,.2f}")
        if m["tokens_per_second"]:
            lines.append(f"  {m['tokens_per_second']:,.0f} training tokens/s ({m['world_size']} process(es))")
        lines.append(f'  saved to {self.path}; try `lts generate {shlex.quote(self.model_id)} "ROMEO:"`')
        return [Lines(lines, f"{self.model_id} trained: {m['steps']} steps, {m['tokens_seen']:,} tokens")]


def is_main_process() -> bool:
    return _rank()[0] == 0


def _rank() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


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
) -> TrainResult:
    """Train `target.arch` on `corpus`; resumes an interrupted run of the same command by itself.
    `models_root`: where the model folder goes (the workspace's models/ by default)."""
    model_id = name or model_id_for(target)
    work = (models_root or workspace.models_dir()) / f".{model_id}.training"
    with workspace.in_use(token_folder(corpus), work):  # `lts cache prune` leaves them alone meanwhile
        return _train(target, config, corpus, model_id, restart, on_event, models_root)


def _train(
    target: Resolved,
    config: TrainConfig,
    corpus: Corpus,
    model_id: str,
    restart: bool,
    on_event: OnEvent | None,
    models_root: Path | None,
) -> TrainResult:
    import torch
    import transformers

    arch = target.arch
    emit = on_event or (lambda event: None)

    def note(text: str) -> None:
        emit(Event("note", text))

    rank, world = _rank()
    _check(arch, config)
    models = models_root or workspace.models_dir()
    final, work = models / model_id, models / f".{model_id}.training"
    folders.check_replaceable(final, METRICS_FILE, "a model trained by lts", force=True)
    if final.exists() and not restart and not work.exists():
        raise ConfigError(
            ["restart", "name"],
            f"{model_id} is trained already ({final}); {{0}} trains it again "
            "(the old model stays until the new one is done), or {1} trains another copy",
        )
    if work.exists() and not (work / SIGNATURE_FILE).is_file():
        raise LtsError(f"{work} is not an lts training folder (no {SIGNATURE_FILE}); nothing was touched; move it away")
    if restart and work.exists() and rank == 0:
        folders.remove_folder(work, note)

    tokens = tokenize(corpus)
    sizes = {split: int(a.size) for split, a in tokens.items()}
    line = (
        f"{corpus.name}: {sizes['train']:,} training, {sizes['validation']:,} validation, {sizes['test']:,} test tokens"
    )
    emit(Event("tokens", line, data=sizes))
    for split in ("train", "validation"):
        if block_count(tokens[split], config.seq_len) < 1:
            raise LtsError(
                f"{corpus.name}: the {split} split has {tokens[split].size} tokens, fewer than one block of "
                f"--seq-len {config.seq_len}; add text or lower --seq-len"
            )

    signature = {"arch": arch.to_config(), "train": as_plain(config), "corpus": corpus.key, "world_size": world}
    checkpoint, skipped = resume_point(work, signature, arch, rank)
    for folder, problem in skipped:
        then = f"resuming from {checkpoint.name}" if checkpoint else "starting from step 0"
        emit(Event("checkpoint-skipped", f"{folder.name} is incomplete ({problem}); {then}",
                   data={"checkpoint": folder.name, "problem": problem, "resume_from": checkpoint}))  # fmt: skip
    if config.threads:
        torch.set_num_threads(config.threads)
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.set_seed(config.seed)
    model = transformers.GPT2LMHeadModel(
        gpt2_config(
            arch,
            resid_pdrop=config.dropout,
            embd_pdrop=config.dropout,
            attn_pdrop=config.dropout,
            bos_token_id=GPT2_EOS_ID,
            eos_token_id=GPT2_EOS_ID,
        )
    )
    validation, test = (_evaluated(tokens[split], config) for split in ("validation", "test"))
    cuda = torch.cuda.is_available()
    args = transformers.TrainingArguments(
        output_dir=str(work),
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
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
        eval_on_start=checkpoint is None,  # the untrained model's validation loss, for comparison
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
        ddp_backend=None if cuda or world == 1 else "gloo",
    )
    tokens_per_step = config.batch_size * config.gradient_accumulation_steps * config.seq_len * world
    progress = train_progress.callback(emit, tokens_per_step, work if rank == 0 else None)
    trainer = transformers.Trainer(
        model=model,
        args=args,
        train_dataset=blocks_dataset(tokens["train"], config.seq_len),
        eval_dataset=validation,
        callbacks=[progress],
    )
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # we render progress ourselves
    start = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    seconds = time.perf_counter() - start
    emit(Event("final-eval", label="final evaluation (validation and test)"))
    val = trainer.evaluate(validation, metric_key_prefix="val")["val_loss"]
    test = trainer.evaluate(test, metric_key_prefix="test")["test_loss"]
    initial = progress.initial_val_loss()
    trained_steps = config.max_steps - (progress.first_step or 0)
    metrics = {
        "initial_val_loss": initial,
        "initial_val_perplexity": perplexity(initial) if initial is not None else None,
        "train_loss": progress.last_loss if progress.last_loss is not None else output.training_loss,
        "train_loss_mean": output.training_loss,
        "val_loss": val,
        "val_perplexity": perplexity(val),
        "test_loss": test,
        "test_perplexity": perplexity(test),
        "steps": config.max_steps,
        "tokens_seen": config.max_steps * tokens_per_step,
        "train_seconds_this_session": seconds,
        "tokens_per_second": progress.train_tokens_per_s(),
        "wall_tokens_per_second": trained_steps * tokens_per_step / seconds if seconds > 0 else None,
        "resumed_from_step": progress.first_step or None,
        "world_size": world,
        "corpus": corpus.name,
        "corpus_tokens": {s: int(a.size) for s, a in tokens.items()},
    }
    if rank == 0:
        _publish(trainer.model, arch, config, metrics, final, work, note)
    result = TrainResult(model_id, final, metrics)
    emit(Event("done", data=result))
    return result


def _evaluated(tokens: Any, config: TrainConfig) -> Any:
    """The blocks of an evaluation split: all of them, or the first `eval_batches` batches."""
    import torch

    blocks = blocks_dataset(tokens, config.seq_len)
    if not config.eval_batches:
        return blocks
    return torch.utils.data.Subset(blocks, range(min(len(blocks), config.eval_batches * config.batch_size)))


def _check(arch: Arch, config: TrainConfig) -> None:
    if config.seq_len > arch.n_positions:
        raise ConfigError(["seq_len"], f"{{0}} {config.seq_len} exceeds the model's n_positions ({arch.n_positions})")
    if arch.vocab_size < GPT2_VOCAB_SIZE:
        raise LtsError(f"vocab_size {arch.vocab_size} is smaller than the GPT-2 tokenizer's {GPT2_VOCAB_SIZE}")


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
        ("validation perplexity", ppl("val_perplexity")),
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
