"""`lts train`: train an architecture (gallery id, search result, archid or file) into a workspace model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from lts_cli.cli import complete
from lts_cli.cli.common import (
    CORPUS,
    Watch,
    configure,
    flags_named,
    note,
    option,
    options_for,
    pick,
    show,
    train_options,
    with_options,
)
from lts_cli.training import TrainConfig

D = TrainConfig()
TRAIN = train_options(D) | options_for(
    D,
    ["eval_every", "eval_tokens", "final_eval", "eval_on_start", "test", "save_every", "save_minutes", "precision",
     "max_time", "threads"],
    eval_on_start={"flags": "--eval-on-start/--no-eval-on-start"},
    test={"flags": "--test/--no-test"},
    max_time={"metavar": "DURATION"},
)  # fmt: skip


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
    tokens: Optional[int] = option("--tokens", "Training tokens (sets --max-steps).", min=1),
    restart: bool = typer.Option(False, "--restart", help="Discard an interrupted run or retrain a trained model."),
    json_out: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    **given: Any,
) -> None:
    """Train a GPT-2 of the given architecture; re-running the same command after an interruption resumes it."""
    from lts_cli.corpus import CorpusOptions
    from lts_cli.training import is_main_process, train_reference

    changes = pick(given, TRAIN)
    cfg = configure(TrainConfig, config, **changes).for_tokens(tokens)
    corpus = CorpusOptions(**pick(given, CORPUS))
    watch = Watch("preparing data")
    try:
        with flags_named(changes, config, also=("restart", "name", "data", "dataset")):
            if not is_main_process():  # under torchrun, process 0 alone reports
                train_reference(ref, cfg, corpus, name, restart)
                return
            with watch.live:
                result = train_reference(ref, cfg, corpus, name, restart, watch)
    except KeyboardInterrupt:
        saved = watch.last.get("saved")
        where = f"checkpoint at step {saved.data}" if saved else "no checkpoint yet"
        note(f"Interrupted ({where}). Run the same command again to resume; --restart starts over.")
        raise typer.Exit(130) from None
    show(result, json_out)
