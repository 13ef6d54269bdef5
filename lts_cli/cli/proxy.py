"""`lts proxy`: train a sample of architectures briefly and check how well cheap proxies rank them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich import box
from rich.table import Table

from lts_cli.cli import complete
from lts_cli.cli.common import bar_progress, data_options, note, out, print_json

# A budget a laptop can afford; flags and --config override it (lts train's defaults are a real run).
PROXY_DEFAULTS: dict[str, Any] = {"max_steps": 300, "seq_len": 128, "batch_size": 16, "warmup_steps": 30}
_DATA = data_options()


def proxy(
    run: Optional[str] = typer.Option(
        None,
        "--run",
        metavar="RUN",
        help="A search run's Pareto front.",
        show_default=False,
        autocompletion=complete.runs,
    ),
    all_evaluated: bool = typer.Option(False, "--all", help="With --run: every architecture it measured."),
    archs: Optional[list[str]] = typer.Option(
        None, "--archs", metavar="ID|FILE", help="Architectures (repeat, or comma-separated).", show_default=False
    ),
    sample: Optional[int] = typer.Option(
        None,
        "--sample",
        min=1,
        help="N architectures of the search space, spread over its parameter range.",
        show_default=False,
    ),
    min_params: Optional[float] = typer.Option(
        None, "--min-params", help="With --sample: fewest params.", show_default="1e+06"
    ),
    max_params: Optional[float] = typer.Option(
        None, "--max-params", help="With --sample: most params.", show_default="1e+09"
    ),
    space_config: Optional[Path] = typer.Option(
        None,
        "--space",
        help="With --sample: a search config whose space to sample.",
        show_default="the published space",
    ),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML/JSON training config.", show_default=False),
    data: Optional[Path] = _DATA["data"],
    dataset: Optional[str] = _DATA["dataset"],
    text_field: str = _DATA["text_field"],
    max_steps: Optional[int] = typer.Option(
        None, "--max-steps", help="Optimizer steps per architecture.", show_default=str(PROXY_DEFAULTS["max_steps"])
    ),
    tokens: Optional[int] = typer.Option(
        None, "--tokens", min=1, help="Training tokens per architecture (sets the steps).", show_default=False
    ),
    seq_len: Optional[int] = typer.Option(
        None, "--seq-len", help="Tokens per block.", show_default=str(PROXY_DEFAULTS["seq_len"])
    ),
    batch_size: Optional[int] = typer.Option(
        None, "--batch-size", help="Blocks per step.", show_default=str(PROXY_DEFAULTS["batch_size"])
    ),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate.", show_default="6e-4"),
    warmup_steps: Optional[int] = typer.Option(
        None, "--warmup-steps", help="Warm-up steps.", show_default=str(PROXY_DEFAULTS["warmup_steps"])
    ),
    seed: Optional[int] = typer.Option(None, "--seed", help="Training seed (the same for all).", show_default="42"),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Parallel training processes, each with its share of the cores."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Train architectures briefly (lts train's code, one budget for all, cached) and report how well
    non-embedding parameters and other cheap proxies rank them by validation perplexity."""
    from lts_cli import proxy as lib
    from lts_cli import workspace
    from lts_cli.config import SearchConfig, TrainConfig, from_file, load_config, override
    from lts_cli.errors import UsageError
    from lts_cli.plots import proxy_plot
    from lts_cli.training import select_corpus

    chosen = [name for name, given in (("--run", run), ("--archs", archs), ("--sample", sample)) if given]
    if len(chosen) != 1:
        raise UsageError("choose the architectures with one of --run RUN, --archs ID..., --sample N")
    base = from_file(TrainConfig, config, PROXY_DEFAULTS) if config else TrainConfig(**PROXY_DEFAULTS)
    flags = {"max_steps": max_steps, "seq_len": seq_len, "batch_size": batch_size, "lr": lr,
             "warmup_steps": warmup_steps, "seed": seed}  # fmt: skip
    cfg = lib.budget(override(base, config, **flags), tokens)
    if run is not None:
        candidates = lib.from_run(run, all_evaluated)
    elif archs:
        candidates = lib.from_refs([ref for item in archs for ref in item.split(",") if ref])
    else:
        assert sample is not None
        space = load_config(SearchConfig, space_config, min_params=min_params, max_params=max_params)
        candidates = lib.spread_sample(sample, space, seed=cfg.seed)
    corpus = select_corpus(data, dataset, text_field)
    ui = _Progress()
    started = time.perf_counter()
    try:
        with ui.live:
            results = lib.run(candidates, corpus, cfg, workers, ui.on_event)
    except KeyboardInterrupt:
        note("Interrupted. Finished architectures are cached; the same command trains only the rest.")
        raise typer.Exit(130) from None
    rep = lib.report(candidates, results, cfg.seq_len, seed=cfg.seed)
    folder = workspace.ensure_home() / "proxy" / "reports" / time.strftime("%Y%m%d-%H%M%S")
    workspace.atomic_write_json(folder / "report.json", rep)
    workspace.atomic_write_bytes(folder / "proxy.png", proxy_plot(rep))
    rep = {**rep, "folder": str(folder), "wall_s": time.perf_counter() - started}
    if json_out:
        print_json(rep)
        return
    _print(rep)


def _print(rep: dict[str, Any]) -> None:
    archs = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), pad_edge=False)
    for col in ("architecture", "L/d/ff/h", "non-emb M", "FLOPs G", "val ppl", "tok/s"):
        archs.add_column(col, justify="left" if col == "architecture" else "right", no_wrap=col == "architecture")
    for row in sorted(rep["architectures"], key=lambda r: r["non_embedding_params"]):
        a = row["arch"]
        archs.add_row(
            row["label"][:20],
            f"{a['n_layer']}/{a['d_model']}/{a['d_inner']}/{a['n_head']}",
            f"{row['non_embedding_params'] / 1e6:.2f}",
            f"{row['forward_flops'] / 1e9:.1f}",
            f"{row['val_perplexity']:,.1f}",
            f"{row['tokens_per_second']:,.0f}" if row["tokens_per_second"] else "-",
        )
    out.print(archs)
    proxies = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), pad_edge=False)
    for col in ("proxy", "Spearman", "95% CI", "Kendall", "95% CI ", "top 25%"):
        proxies.add_column(col, justify="left" if col == "proxy" else "right")
    for p in rep["proxies"].values():
        proxies.add_row(
            p["label"],
            f"{p['spearman']:.3f}",
            f"{p['spearman_ci95'][0]:.2f}..{p['spearman_ci95'][1]:.2f}",
            f"{p['kendall']:.3f}",
            f"{p['kendall_ci95'][0]:.2f}..{p['kendall_ci95'][1]:.2f}",
            f"{p['top_overlap']}/{p['top_k']}",
        )
    out.print(proxies)
    out.print(rep["verdict"], highlight=False, soft_wrap=True)
    note(f"report and plot: {rep['folder']} ({rep['wall_s']:.0f} s)")


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
