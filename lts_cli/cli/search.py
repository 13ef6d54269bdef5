"""`lts search`: run, resume, list, show and remove Lightweight Transformer Search runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from lts_cli import objectives as registry
from lts_cli.cli import complete
from lts_cli.cli.common import (
    EXECUTOR,
    Watch,
    flags_named,
    measure_options,
    note,
    option,
    options_for,
    pick,
    show,
    trials_note,
    where,
    with_options,
)
from lts_cli.search_config import SearchConfig

app = typer.Typer(
    help="Run the Lightweight Transformer Search: an evolutionary Pareto search over the chosen objectives "
    "(default: non-embedding parameters, max; ONNX latency and ONNX memory, min) measured on this machine.",
)
D = SearchConfig()
MEASURE = measure_options(D.measure)
SEARCH = options_for(D, {
    "generations": "Generations.",
    "init_models": "Random architectures in generation 1.",
    "mutations_per_parent": "Mutations per Pareto member.",
    "crossovers": "Crossovers of random Pareto pairs per generation.",
    "random_mix": "Fresh random architectures per generation.",
    "max_unseen": "Most new architectures per generation.",
    "seed": "Random seed.",
    "min_params": "Fewest non-embedding params allowed.",
    "max_params": "Most non-embedding params allowed.",
    "strategy": "evolution (the published loop) or whole-space (predict all, measure the best).",
    "screen": "Predict latency, measure only what could reach the front; --no-screen times every proposal.",
    "screen_factor": "Screened: proposals per generation, x a plain one.",
    "screen_measure": "Screened: measure at most this share of a plain generation.",
    "screen_explore": "Screened: also measure this share of the chosen, at random.",
    "round_size": "whole-space: architectures measured per round.",
    "min_gain": "whole-space: stop below this predicted gain (share of the hypervolume).",
    "max_measurements": "whole-space: stop after this many measured (0: no limit).",
}, generations={"flags": ("--generations", "-g")}, screen={"flags": "--screen/--no-screen"}) | {
    "objectives": (Optional[str], option("--objectives", f"Comma-separated, from: {', '.join(registry.REGISTRY)}.",
                                         ",".join(D.objectives), metavar="LIST")),
}  # fmt: skip


@app.callback(invoke_without_command=True)
@with_options(SEARCH, MEASURE, EXECUTOR)
def search(
    ctx: typer.Context,
    config: Optional[Path] = option("--config", "YAML/JSON search config (configs/search.yaml)."),
    name: Optional[str] = option("--name", "Run name (a folder under runs/).", "date-time-seedN"),
    resume: Optional[str] = option(
        "--resume", "Continue an interrupted run.", metavar="RUN", autocompletion=complete.runs
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Measure every architecture again."),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip the PNG plots."),
    json_out: bool = typer.Option(False, "--json", help="Print the run summary as JSON at the end."),
    **given: Any,
) -> None:
    """Search (default), or `lts search list` / `show RUN` / `rm RUN` for past runs."""
    if ctx.invoked_subcommand is not None:
        return
    from lts_cli.searching import execute, prepare

    changes = pick(given, SEARCH) | {"measure": pick(given, MEASURE)}
    if changes["objectives"] is not None:
        changes["objectives"] = registry.parse(changes["objectives"])
    with flags_named(changes, config, also=("resume", "config", "name")):
        job = prepare(name, resume, config, changes)
    if job.state is not None:
        note(f"resuming {job.run.name}: {len(job.state.records)} architectures already evaluated")
    trials_note(job.config.measure)
    note(f"run {job.run.name}: {job.run.path}")
    watch = Watch("generation", "architecture")
    try:
        with watch.live:
            result = execute(job, watch, not no_cache, not no_plots, where(given))
    except KeyboardInterrupt:
        if job.run.path.exists():
            note(
                f"Interrupted. Every finished architecture is saved; continue with `lts search --resume {job.run.name}`"
            )
        else:
            note("Interrupted before anything was measured; nothing was kept")
        raise typer.Exit(130) from None
    show(result, json_out)


@app.command("list")
def list_cmd(json_out: bool = typer.Option(False, "--json", help="Print the runs as JSON.")) -> None:
    """List past search runs, newest first."""
    from lts_cli.runs import listing

    show(listing(), json_out)


@app.command("show")
def show_run(
    run_name: str = typer.Argument(
        ..., metavar="RUN", help="Run name (see `lts search list`).", autocompletion=complete.runs
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the run summary as JSON."),
) -> None:
    """Show a run's Pareto front, hypervolume per generation and outputs."""
    from lts_cli.runs import finished_summary

    show(finished_summary(run_name), json_out)


@app.command("rm")
def remove(
    run_name: str = typer.Argument(
        ..., metavar="RUN", help="Run name (see `lts search list`).", autocompletion=complete.runs
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
) -> None:
    """Delete what lts wrote in a search run's folder (its measurements stay cached in the workspace)."""
    from lts_cli.cli.common import confirm
    from lts_cli.runs import RunFolder
    from lts_cli.tidying import remove_run

    confirm(f"remove the search run {run_name} ({RunFolder.open(run_name).path})", yes)
    note(f"removed {remove_run(run_name, on_note=note)}")
