"""`lts proxy`: train a sample of architectures briefly and check how well cheap proxies rank them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from lts_cli.cli import complete
from lts_cli.cli.common import CORPUS, Watch, flags_named, note, option, pick, show, train_options, with_options
from lts_cli.proxy import BUDGET, MIN_ARCHS

TRAIN = train_options(BUDGET)
SELECTION = {
    "run": (Optional[str], option("--run", "A search run's Pareto front.", metavar="RUN",
                                  autocompletion=complete.runs)),
    "evaluated": (bool, typer.Option(False, "--all", help="With --run: every architecture it measured.")),
    "archs": (Optional[list[str]], option("--archs", "Architectures (repeat, or comma-separated).", metavar="ID|FILE")),
    "sample": (Optional[int], option("--sample", "N architectures of the search space, spread over its parameter "
                                     "range.", min=MIN_ARCHS)),
}  # fmt: skip
SPACE = {
    "min_params": (Optional[float], option("--min-params", "With --sample: fewest params.", "1e+06")),
    "max_params": (Optional[float], option("--max-params", "With --sample: most params.", "1e+09")),
}


RUN = {
    "tokens": (Optional[int], option("--tokens", "Training tokens per architecture (sets the steps).", min=1)),
    "eval_tokens": (Optional[int], option("--eval-tokens", "Validation tokens: one fixed sample for all.",
                                          "a quarter of the training tokens, at most 65536", min=1)),
    "workers": (int, typer.Option(1, "--workers", min=1, help="Parallel trainings, each with its share of the cores.")),
}  # fmt: skip


@with_options(SELECTION, SPACE, RUN, CORPUS, TRAIN)
def proxy(
    space: Optional[Path] = option(
        "--space", "With --sample: a search config whose space to sample.", "the published one"
    ),
    config: Optional[Path] = option("--config", "YAML/JSON training config (over the proxy's budget)."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    **given: Any,
) -> None:
    """Train architectures briefly (lts train's code, one budget for all, cached) and report how well
    non-embedding parameters and other cheap proxies rank them by validation perplexity."""
    from lts_cli import proxy as lib
    from lts_cli.config import as_plain, from_file, load, load_mapping, updated
    from lts_cli.corpus import CorpusOptions
    from lts_cli.proxy_study import study
    from lts_cli.search_config import SearchConfig
    from lts_cli.training import TrainConfig

    changes, chosen = pick(given, TRAIN), pick(given, SELECTION)
    with flags_named(changes, config, also=(*SELECTION, *SPACE, *RUN, "data", "dataset")):
        budget = updated(from_file(TrainConfig, config, as_plain(BUDGET)) if config else BUDGET, **changes)
        eval_tokens = given["eval_tokens"]
        if eval_tokens is None and config is not None and "eval_tokens" in load_mapping(config):
            eval_tokens = budget.eval_tokens  # the file's, not the proxy's default
        chosen["archs"] = tuple(ref for item in chosen["archs"] or () for ref in item.split(",") if ref)
        selection = lib.Selection(**chosen, space=load(SearchConfig, space, **pick(given, SPACE)))
        corpus = CorpusOptions(**pick(given, CORPUS)).load()
        watch = Watch("architectures")
        try:
            with watch.live:
                report = study(selection, corpus, budget, given["tokens"], given["workers"], watch, eval_tokens)
        except KeyboardInterrupt:
            note("Interrupted. Finished architectures are cached; the same command trains only the rest.")
            raise typer.Exit(130) from None
    show(report, json_out)
