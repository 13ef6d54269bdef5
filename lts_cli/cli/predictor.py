"""`lts predictor show`: this machine's latency model, what it is fitted on, and how wrong it is."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Optional

import typer

from lts_cli.cli.common import configure, measure_options, pick, show, with_options
from lts_cli.settings import MeasureSettings

app = typer.Typer(help="The per-machine latency model that `lts search --screen` and `lts profile --predict` use.")
MEASURE = {
    name: spec
    for name, spec in measure_options(MeasureSettings()).items()
    if name in ("seq_len", "batch_size", "threads", "graph", "opt_level", "decode_context")
}


class Kind(StrEnum):
    prefill = "prefill"
    decode = "decode"


@app.command("show")
@with_options(MEASURE)
def show_model(
    kind: Kind = typer.Option(Kind.prefill, "--kind", case_sensitive=False, help="prefill or decode latency."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML/JSON measurement settings.", show_default=False),
    plot: Optional[Path] = typer.Option(
        None,
        "--plot",
        help="Where to write the predicted-vs-measured PNG.",
        show_default="WORKSPACE/predictor/KIND.png",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the model, its accuracy and every point as JSON."),
    **given: Any,
) -> None:
    """Fit the model on this machine's cached measurements with these settings (timing protocol aside)
    and show its coefficients and its error out of sample, with a plot of predicted against measured."""
    from lts_cli.predictor import report

    show(report(configure(MeasureSettings, config, **pick(given, MEASURE)), kind.value, plot), json_out)
