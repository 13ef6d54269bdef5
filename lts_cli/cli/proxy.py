"""`lts proxy`: train a sample of architectures briefly and check how well cheap proxies rank them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from lts_cli import objectives as registry
from lts_cli.cli import complete
from lts_cli.cli.common import (
    CORPUS,
    bar_progress,
    flags_named,
    note,
    option,
    out,
    pick,
    print_json,
    print_table,
    train_options,
    with_options,
)
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


@with_options(SELECTION, SPACE, CORPUS, TRAIN)
def proxy(
    space: Optional[Path] = option(
        "--space", "With --sample: a search config whose space to sample.", "the published one"
    ),
    config: Optional[Path] = option("--config", "YAML/JSON training config (over the proxy's budget)."),
    tokens: Optional[int] = option("--tokens", "Training tokens per architecture (sets the steps).", min=1),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Parallel training processes, each with its share of the cores."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    **given: Any,
) -> None:
    """Train architectures briefly (lts train's code, one budget for all, cached) and report how well
    non-embedding parameters and other cheap proxies rank them by validation perplexity."""
    from lts_cli import proxy as lib
    from lts_cli.config import as_plain, from_file, load, updated
    from lts_cli.corpus import CorpusOptions
    from lts_cli.search import SearchConfig
    from lts_cli.training import TrainConfig

    changes, chosen = pick(given, TRAIN), pick(given, SELECTION)
    with flags_named(changes, config, also=(*SELECTION, *SPACE, "data", "dataset")):
        budget = updated(from_file(TrainConfig, config, as_plain(BUDGET)) if config else BUDGET, **changes)
        chosen["archs"] = tuple(ref for item in chosen["archs"] or () for ref in item.split(",") if ref)
        selection = lib.Selection(**chosen, space=load(SearchConfig, space, **pick(given, SPACE)))
        corpus = CorpusOptions(**pick(given, CORPUS)).load()
        ui = _Progress()
        try:
            with ui.live:
                report = lib.study(selection, corpus, budget, tokens, workers, ui.on_event)
        except KeyboardInterrupt:
            note("Interrupted. Finished architectures are cached; the same command trains only the rest.")
            raise typer.Exit(130) from None
    if json_out:
        print_json(report.to_dict())
        return
    _print(report)


def _print(rep: Any) -> None:
    proxies = [registry.get(n) for n in rep.proxies if registry.get(n).quality_proxy]
    rows = []
    for row in sorted(rep.architectures, key=lambda r: r[registry.QUALITY]):
        a = row["arch"]
        rows.append([row["label"][:20], f"{a['n_layer']}/{a['d_model']}/{a['d_inner']}/{a['n_head']}",
                     *(o.format(row[o.name]) for o in proxies), f"{row['val_perplexity']:,.1f}",
                     f"{row['tokens_per_second']:,.0f}" if row["tokens_per_second"] else "-"])  # fmt: skip
    print_table(["architecture", "L/d/ff/h", *(o.header() for o in proxies), "val ppl", "tok/s"], rows, left=2)
    stats = [[p.label, f"{p.spearman:.3f}", f"{p.spearman_ci95[0]:.2f}..{p.spearman_ci95[1]:.2f}", f"{p.kendall:.3f}",
              f"{p.kendall_ci95[0]:.2f}..{p.kendall_ci95[1]:.2f}", f"{p.top_overlap}/{p.top_k}"]
             for p in rep.proxies.values()]  # fmt: skip
    print_table(["proxy", "Spearman", "95% CI", "Kendall", "95% CI ", "top 25%"], stats)
    out.print(rep.verdict, highlight=False, soft_wrap=True)
    note(f"report and plot: {rep.folder} ({rep.wall_s:.0f} s)")


class _Progress:
    def __init__(self) -> None:
        self.live = bar_progress()
        self.archs = self.live.add_task("architectures", total=None)
        self.current = ""

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        log = self.live.console.print
        if kind == "start":
            self.live.update(self.archs, total=data["total"], completed=data["cached"])
            if data["cached"]:
                log(f"{data['cached']} of {data['total']} already trained with this budget (cached)", highlight=False)
        elif kind == "arch_start":
            self.current = f"{data['label'][:14]} {data['arch'].short()}"
            self.live.update(self.archs, description=self.current)
        elif kind == "train_step":
            self.live.update(self.archs, description=f"{self.current} step {data['step']}/{data['max_steps']}")
        elif kind == "arch_done":
            self.live.advance(self.archs)
            log(f"{data['label'][:20]}: validation perplexity {data['val_perplexity']:,.1f}", highlight=False)
