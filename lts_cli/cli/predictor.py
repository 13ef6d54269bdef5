"""`lts predictor show`: this machine's latency model, what it is fitted on, and how wrong it is."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from lts_cli.cli.common import GraphChoice, OptLevel, default, note, out, print_json, value
from lts_cli.config import MeasureSettings

app = typer.Typer(help="The per-machine latency model that `lts search --screen` and `lts profile --predict` use.")


class Kind(StrEnum):
    prefill = "prefill"
    decode = "decode"


def _d(field: str) -> str:
    return default(MeasureSettings, field)


@app.command("show")
def show(
    kind: Kind = typer.Option(
        Kind.prefill, "--kind", case_sensitive=False, help="prefill (onnx_latency) or decode (decode_latency)."
    ),
    config: Optional[Path] = typer.Option(
        None, "--config", help="YAML/JSON of measurement settings.", show_default=False
    ),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Sequence length.", show_default=_d("seq_len")),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Batch size.", show_default=_d("batch_size")),
    threads: Optional[int] = typer.Option(None, "--threads", help="ONNX Runtime threads.", show_default=_d("threads")),
    graph: Optional[GraphChoice] = typer.Option(
        None, "--graph", case_sensitive=False, help="The prefill graph.", show_default=_d("graph")
    ),
    opt_level: Optional[OptLevel] = typer.Option(
        None, "--opt-level", case_sensitive=False, help="ONNX Runtime graph optimization.", show_default=_d("opt_level")
    ),
    decode_context: Optional[int] = typer.Option(
        None, "--decode-context", help="KV cache tokens (decode).", show_default=_d("decode_context")
    ),
    plot: Optional[Path] = typer.Option(
        None,
        "--plot",
        help="Where to write the predicted-vs-measured PNG.",
        show_default="WORKSPACE/predictor/KIND.png",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the model, its accuracy and every point as JSON."),
) -> None:
    """Fit the model on this machine's cached measurements with these settings (timing protocol aside)
    and show its coefficients and its error out of sample, with a plot of predicted against measured."""
    from lts_cli import workspace
    from lts_cli.config import load_config
    from lts_cli.evaluation import predictor_report
    from lts_cli.plots import predictor_plot

    settings = load_config(
        MeasureSettings,
        config,
        seq_len=seq_len,
        batch_size=batch_size,
        threads=threads,
        graph=value(graph),
        opt_level=value(opt_level),
        decode_context=decode_context,
    )
    report = predictor_report(settings, kind.value)
    acc, model = report["out_of_sample"], report["model"]
    what = f"seq {settings.seq_len}" if kind is Kind.prefill else f"context {settings.decode_context}"
    target = plot or workspace.ensure_home() / "predictor" / f"{kind.value}.png"
    title = f"{kind.value} latency, {what}: Spearman {acc['spearman']:.3f}, median error {acc['median_abs_error']:.1%}"
    workspace.atomic_write_bytes(target, predictor_plot(report["points"], title))
    if json_out:
        print_json({**report, "plot": str(target)})
        return
    out.print(
        f"[bold]{kind.value} latency model[/] for {what}, batch {settings.batch_size}, {settings.threads} thread(s); "
        f"fitted on {model['n']} measurements of this machine",
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        f"out of sample ({acc['n']} measurements, each predicted by a model fitted without it): "
        f"Spearman {acc['spearman']:.4f}, absolute error median {acc['median_abs_error']:.1%}, "
        f"90th percentile {acc['p90_abs_error']:.1%}",
        highlight=False,
        soft_wrap=True,
    )
    table = Table(box=None, pad_edge=False)
    table.add_column("feature")
    table.add_column("seconds per unit", justify="right")
    for name, coef in model["coefficients"].items():
        table.add_row(name, f"{coef:.3g}" if coef else "0 (not used)")
    out.print(table)
    note(f"plot: {target}")
