"""`lts predictor show`: this machine's latency model, what it is fitted on, and how wrong it is."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Optional

import typer

from lts_cli.cli.common import (
    configure,
    measure_options,
    note,
    out,
    pick,
    print_json,
    print_table,
    with_options,
)
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
def show(
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

    settings = configure(MeasureSettings, config, **pick(given, MEASURE))
    r = report(settings, kind.value, plot)
    acc, model = r.out_of_sample, r.model
    if json_out:
        errors = {"median_abs_error": acc.errors.median, "p90_abs_error": acc.errors.p90}
        points = [{"archid": a, "measured": m, "predicted": p} for a, m, p in acc.points]
        print_json({"fingerprint": r.fingerprint, "model": model.to_dict(), "plot": str(r.plot),
                    "out_of_sample": {"n": acc.n, "spearman": acc.spearman, **errors}, "points": points})  # fmt: skip
        return
    what = f"seq {settings.seq_len}" if kind is Kind.prefill else f"context {settings.decode_context}"
    out.print(
        f"[bold]{kind.value} latency model[/] for {what}, batch {settings.batch_size}, {settings.threads} thread(s); "
        f"fitted on {model.n} measurements of this machine\n"
        f"out of sample ({acc.n} measurements, each predicted by a model fitted without it): Spearman "
        f"{acc.spearman:.4f}, absolute error median {acc.errors.median:.1%}, 90th percentile {acc.errors.p90:.1%}",
        highlight=False,
        soft_wrap=True,
    )
    rows = [
        [name, f"{coef:.3g}" if coef else "0 (not used)"]
        for name, coef in zip(model.feature_names, model.coef, strict=True)
    ]
    print_table(["feature", "seconds per unit"], rows)
    note(f"plot: {r.plot}")
