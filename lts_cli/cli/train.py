"""`lts train`: train an architecture (gallery id, search result, archid or file) into a workspace model."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Optional

import typer

from lts_cli.cli import complete
from lts_cli.cli.common import bar_progress, data_options, default, note, out, print_json
from lts_cli.config import TrainConfig

_DATA = data_options()


def _d(field: str) -> str:
    return default(TrainConfig, field)


def train(
    ref: str = typer.Argument(
        ...,
        metavar="ID|FILE",
        help="Gallery id, workspace model or archid (gpt2_ and 4 hex digits are enough), arch file, or Hub id.",
        autocompletion=complete.archs,
    ),
    config: Optional[Path] = typer.Option(
        None, "--config", help="YAML/JSON training config (configs/train.yaml).", show_default=False
    ),
    data: Optional[Path] = _DATA["data"],
    dataset: Optional[str] = _DATA["dataset"],
    text_field: str = _DATA["text_field"],
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimizer steps.", show_default=_d("max_steps")),
    batch_size: Optional[int] = typer.Option(
        None, "--batch-size", help="Blocks per step per process.", show_default=_d("batch_size")
    ),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Tokens per block.", show_default=_d("seq_len")),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate.", show_default=_d("lr")),
    warmup_steps: Optional[int] = typer.Option(
        None, "--warmup-steps", help="Linear warm-up steps.", show_default=_d("warmup_steps")
    ),
    eval_every: Optional[int] = typer.Option(
        None, "--eval-every", help="Steps between validation evaluations.", show_default=_d("eval_every")
    ),
    save_every: Optional[int] = typer.Option(
        None, "--save-every", help="Steps between checkpoints.", show_default=_d("save_every")
    ),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed.", show_default=_d("seed")),
    threads: Optional[int] = typer.Option(
        None, "--threads", help="Torch threads (0: all cores).", show_default=_d("threads")
    ),
    name: Optional[str] = typer.Option(None, "--name", help="Model id.", show_default="the architecture's id"),
    restart: bool = typer.Option(False, "--restart", help="Discard an interrupted run or retrain a trained model."),
    json_out: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Train a GPT-2 of the given architecture; re-running the same command after an interruption resumes it."""
    from lts_cli.config import load_config
    from lts_cli.references import architecture
    from lts_cli.store import open_store
    from lts_cli.training import is_main_process, select_corpus
    from lts_cli.training import train as run_training
    from lts_cli.workspace import check_name

    cfg = load_config(
        TrainConfig,
        config,
        max_steps=max_steps,
        batch_size=batch_size,
        seq_len=seq_len,
        lr=lr,
        warmup_steps=warmup_steps,
        eval_every=eval_every,
        save_every=save_every,
        seed=seed,
        threads=threads,
    )
    if name is not None:
        check_name(name)
    with open_store() as store:
        target = architecture(ref, store)
        store.put_arch(target.arch, "train")
    corpus = select_corpus(data, dataset, text_field)
    if not is_main_process():  # under torchrun, process 0 alone reports
        run_training(target, cfg, corpus, name=name, restart=restart)
        return
    ui = _TrainProgress()
    try:
        with ui.live:
            result = run_training(target, cfg, corpus, name=name, restart=restart, on_event=ui.on_event)
    except KeyboardInterrupt:
        saved = f"checkpoint at step {ui.saved}" if ui.saved else "no checkpoint yet"
        note(f"Interrupted ({saved}). Run the same command again to resume; --restart starts over.")
        raise typer.Exit(130) from None
    m = result.metrics
    if json_out:
        print_json({"model": result.model_id, "path": str(result.path), **m})
        return
    out.print(f"[bold]{result.model_id}[/] trained: {m['steps']} steps, {m['tokens_seen']:,} tokens", highlight=False)
    if m["initial_val_perplexity"] is not None:
        out.print(f"  validation perplexity untrained  {m['initial_val_perplexity']:,.1f}", highlight=False)
    out.print(f"  validation loss {m['val_loss']:.4f}, perplexity {m['val_perplexity']:,.2f}", highlight=False)
    out.print(f"  test loss       {m['test_loss']:.4f}, perplexity {m['test_perplexity']:,.2f}", highlight=False)
    if m["tokens_per_second"]:
        out.print(f"  {m['tokens_per_second']:,.0f} training tokens/s ({m['world_size']} process(es))", highlight=False)
    out.print(
        f'  saved to {result.path}; try `lts generate {shlex.quote(result.model_id)} "ROMEO:"`',
        highlight=False,
        soft_wrap=True,
    )


class _TrainProgress:
    def __init__(self) -> None:
        self.live = bar_progress()
        self.task = self.live.add_task("preparing data", total=None)
        self.saved: int | None = None

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        log = self.live.console.print
        if kind == "tokens":
            log(
                f"{data['corpus']}: {data['train']:,} training, {data['validation']:,} validation, "
                f"{data['test']:,} test tokens",
                highlight=False,
                soft_wrap=True,
            )
        elif kind == "start":
            resumed = f" (resuming at step {data['step']})" if data["step"] else ""
            log(f"training for {data['max_steps']} steps{resumed}", highlight=False)
            self.live.update(self.task, total=data["max_steps"], completed=data["step"], description="training")
        elif kind == "step":
            loss = f"loss {data['loss']:.3f}, " if data["loss"] is not None else ""
            self.live.update(
                self.task,
                completed=data["step"],
                description=f"step {data['step']}: {loss}{data['tokens_per_s']:,.0f} tok/s",
            )
        elif kind == "eval":
            log(
                f"step {data['step']}: validation loss {data['val_loss']:.4f}, "
                f"perplexity {data['val_perplexity']:,.2f}",
                highlight=False,
            )
        elif kind == "checkpoint-skipped":
            start = f"resuming from {data['resume_from'].name}" if data["resume_from"] else "starting from step 0"
            log(f"{data['checkpoint']} is incomplete ({data['problem']}); {start}", highlight=False, soft_wrap=True)
        elif kind == "saved":
            self.saved = data["step"]
        elif kind == "note":
            log(data["message"], highlight=False, markup=False, soft_wrap=True)
        elif kind == "final-eval":
            self.live.update(self.task, description="final evaluation (validation and test)")
