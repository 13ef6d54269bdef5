"""`lts train`: train an architecture (gallery id, search result, archid or file) into a workspace model."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Optional

import typer

from lts_cli.cli import complete
from lts_cli.cli.common import (
    CORPUS,
    bar_progress,
    configure,
    flags_named,
    note,
    option,
    options_for,
    out,
    pick,
    print_json,
    train_options,
    with_options,
)
from lts_cli.training import TrainConfig

D = TrainConfig()
TRAIN = train_options(D) | options_for(
    D,
    {
        "eval_every": "Steps between validation evaluations.",
        "save_every": "Steps between checkpoints.",
        "threads": "Torch threads (0: all cores).",
    },
)


@with_options(CORPUS, TRAIN)
def train(
    ref: str = typer.Argument(
        ...,
        metavar="ID|FILE",
        help="Gallery id, workspace model or archid (gpt2_ + 4 hex digits is enough), arch file, or Hub id.",
        autocompletion=complete.archs,
    ),
    config: Optional[Path] = option("--config", "YAML/JSON training config (configs/train.yaml)."),
    name: Optional[str] = option("--name", "Model id.", "the architecture's id"),
    restart: bool = typer.Option(False, "--restart", help="Discard an interrupted run or retrain a trained model."),
    json_out: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    **given: Any,
) -> None:
    """Train a GPT-2 of the given architecture; re-running the same command after an interruption resumes it."""
    from lts_cli.corpus import CorpusOptions
    from lts_cli.training import is_main_process, train_reference

    changes = pick(given, TRAIN)
    cfg = configure(TrainConfig, config, **changes)
    corpus = CorpusOptions(**pick(given, CORPUS))
    ui = _TrainProgress()
    try:
        with flags_named(changes, config, also=("restart", "name", "data", "dataset")):
            if not is_main_process():  # under torchrun, process 0 alone reports
                train_reference(ref, cfg, corpus, name, restart)
                return
            with ui.live:
                result = train_reference(ref, cfg, corpus, name, restart, ui.on_event)
    except KeyboardInterrupt:
        saved = f"checkpoint at step {ui.saved}" if ui.saved else "no checkpoint yet"
        note(f"Interrupted ({saved}). Run the same command again to resume; --restart starts over.")
        raise typer.Exit(130) from None
    _print_result(result, json_out)


def _print_result(result: Any, json_out: bool) -> None:
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
