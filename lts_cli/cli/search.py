"""`lts search`: run, resume, list, show and remove Lightweight Transformer Search runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from lts_cli import objectives as registry
from lts_cli.cli import complete
from lts_cli.cli.common import (
    EXECUTOR,
    bar_progress,
    flags_named,
    measure_options,
    note,
    option,
    options_for,
    out,
    pick,
    print_json,
    print_table,
    trials_note,
    where,
    with_options,
)
from lts_cli.search import SearchConfig

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
    "screen": "Propose more, predict latency, measure only what could reach the front.",
    "screen_factor": "With --screen: proposals per generation, x a plain one.",
    "screen_measure": "With --screen: measure at most this share of a plain generation.",
    "screen_explore": "With --screen: also measure this share of the chosen, at random.",
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
    from lts_cli.runs import summary
    from lts_cli.searching import execute, prepare

    place = where(given)
    changes = pick(given, SEARCH) | {"measure": pick(given, MEASURE)}
    if changes["objectives"] is not None:
        changes["objectives"] = registry.parse(changes["objectives"])
    with flags_named(changes, config, also=("resume", "config", "name")):
        job = prepare(name, resume, config, changes)
    if job.state is not None:
        note(f"resuming {job.run.name}: {len(job.state.records)} architectures already evaluated")
    trials_note(job.config.measure)
    note(f"run {job.run.name}: {job.run.path}")
    ui = _SearchProgress(job.config.generations)
    try:
        with ui.live:
            found, final = execute(job, ui.on_event, ui.on_stage, not no_cache, not no_plots, place, ui.note)
    except KeyboardInterrupt:
        if job.run.path.exists():
            note(
                f"Interrupted. Every finished architecture is saved; continue with `lts search --resume {job.run.name}`"
            )
        else:
            note("Interrupted before anything was measured; nothing was kept")
        raise typer.Exit(130) from None
    _print_summary({**summary(job.run.name, found, final), "path": str(job.run.path)}, json_out)


class _SearchProgress:
    """Two bars on stderr (generations, architectures of this generation) and a line per generation."""

    def __init__(self, generations: int) -> None:
        self.live = bar_progress()
        self.gens = self.live.add_task("generation", total=generations)
        self.archs = self.live.add_task("architecture", total=None)
        self.current = ""

    def on_event(self, event: str, state: Any, data: dict[str, Any]) -> None:
        if event == "generation_start":
            self.live.update(self.gens, completed=state.generation - 1, description=f"generation {state.generation}")
            done = sum(1 for r in state.records if r.generation == state.generation)
            self.live.reset(self.archs, total=data["size"], completed=done)
        elif event == "arch_start":
            c = data["candidate"]
            self.current = f"{c.archid[:12]} L{c.arch['n_layer']} d{c.arch['d_model']}"
            self.live.update(self.archs, description=self.current)
        elif event in ("arch_done", "arch_failed"):
            self.live.advance(self.archs)
            if event == "arch_failed":
                self.note(f"{data['failed'].archid[:12]} failed and is left out of the search: {data['failed'].reason}")
        elif event == "generation_done":
            g = data["entry"]
            self.live.update(self.gens, completed=g.generation)
            new = ", ".join(a[:12] for a in g.new_on_front[:4]) + (" ..." if len(g.new_on_front) > 4 else "")
            self.note(
                f"generation {g.generation}: evaluated {g.evaluated} ({g.cached} cached), Pareto {g.pareto_size}, "
                f"hypervolume {g.hypervolume:.4f}, new on front: {new or 'none'}, {g.seconds:.1f} s{_screened(g)}"
            )

    def note(self, text: str) -> None:
        self.live.console.print(text, highlight=False, soft_wrap=True)

    def on_stage(self, stage: str, done: int, total: int) -> None:
        detail = f"{stage} {done + 1}/{total}" if total > 1 else stage
        self.live.update(self.archs, description=f"{self.current} {detail}")


def _screened(g: Any) -> str:
    """A screened generation: how many were proposed and measured, and the model's error on them."""
    s = g.screening
    if not s:
        return ""
    if "not_screened" in s:
        return f"; not screened (too few measurements for a latency model): {s['measured']} of {s['proposed']}"
    errors = ", ".join(f"{name} {e['median']:.1%} median, {e['p90']:.1%} p90" for name, e in s["error"].items())
    return f"; screened: measured {s['measured']} of {s['proposed']} proposed; prediction error {errors or '-'}"


def _print_summary(data: dict[str, Any], json_out: bool) -> None:
    """A run's front, hypervolume and timings (after a search, and `lts search show`)."""
    if json_out:
        print_json(data)
        return
    names = list(data["objectives"])
    rows = [[r["archid"][:16], *(str(r[k]) for k in ("n_layer", "d_model", "d_inner", "n_head")),
             *(registry.get(o).format(r.get(o)) for o in names)] for r in data["front"]]  # fmt: skip
    headers = ["archid", "L", "d_model", "d_inner", "heads", *(registry.get(o).header() for o in names)]
    print_table(headers, rows, f"Pareto front of {data['name']} ({len(rows)} members, {data['status']})")
    hv, t = data["hypervolume"]["per_generation"], data["timings"]
    out.print(f"hypervolume per generation: {', '.join(f'{v:.4f}' for v in hv)}", highlight=False, soft_wrap=True)
    out.print(
        f"{data['generations_done']}/{data['generations']} generations, {t['evaluated']} evaluated "
        f"({t['cached']} cached) in {t['search_wall_s']:.0f} s; outputs: {data['path']}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("list")
def list_cmd(json_out: bool = typer.Option(False, "--json", help="Print the runs as JSON.")) -> None:
    """List past search runs, newest first."""
    from lts_cli.runs import listing

    rows = listing()
    if json_out:
        print_json(rows)
        return
    if not rows:
        note("no search runs yet; start one with `lts search`")
        return
    table = []
    for r in rows:
        if r["status"] == "damaged":
            table.append([r["name"], "damaged", "-", "-", "-", "-", r["problem"]])
            continue
        hv = f"{r['hypervolume']:.4f}" if r["hypervolume"] is not None else "-"
        shorts = ",".join(registry.get(o).short for o in r["objectives"])
        table.append([r["name"], r["status"], f"{r['generations_done']}/{r['generations']}", str(r["evaluated"]),
                      str(r["pareto_size"]), hv, shorts])  # fmt: skip
    print_table(["run", "status", "generations", "evaluated", "Pareto", "hypervolume", "objectives"], table, left=2)


@app.command("show")
def show(
    run_name: str = typer.Argument(
        ..., metavar="RUN", help="Run name (see `lts search list`).", autocompletion=complete.runs
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the run summary as JSON."),
) -> None:
    """Show a run's Pareto front, hypervolume per generation and outputs."""
    from lts_cli.runs import finished_summary

    _print_summary(finished_summary(run_name), json_out)


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
