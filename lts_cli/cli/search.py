"""`lts search`: run, resume, list, show and remove Lightweight Transformer Search runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from lts_cli import objectives as registry
from lts_cli.cli import complete
from lts_cli.cli.common import (
    EXECUTOR,
    ExecutorChoice,
    GraphChoice,
    OptLevel,
    bar_progress,
    flags_named,
    measure_options,
    note,
    option,
    out,
    pick,
    print_json,
    print_table,
    trials_note,
    where,
)
from lts_cli.search import SearchConfig

app = typer.Typer(
    help="Run the Lightweight Transformer Search: an evolutionary Pareto search over the chosen objectives "
    "(default: non-embedding parameters, max; ONNX latency and ONNX memory, min) measured on this machine.",
)
D = SearchConfig()
MEASURE = measure_options(D.measure)
SEARCH = {
    "generations": option(("--generations", "-g"), "Generations.", D.generations),
    "init_models": option("--init-models", "Random architectures in generation 1.", D.init_models),
    "mutations_per_parent": option("--mutations-per-parent", "Mutations per Pareto member.", D.mutations_per_parent),
    "crossovers": option("--crossovers", "Crossovers of random Pareto pairs per generation.", D.crossovers),
    "random_mix": option("--random-mix", "Fresh random architectures per generation.", D.random_mix),
    "max_unseen": option("--max-unseen", "Most new architectures per generation.", D.max_unseen),
    "seed": option("--seed", "Random seed.", D.seed),
    "min_params": option("--min-params", "Fewest non-embedding params allowed.", D.min_params),
    "max_params": option("--max-params", "Most non-embedding params allowed.", D.max_params),
    "objectives": option("--objectives", f"Comma-separated objectives, from: {', '.join(registry.REGISTRY)}.",
                       ",".join(D.objectives), metavar="LIST"),
    "screen": option("--screen/--no-screen", "Propose more, predict latency, measure only what could reach the front.",
                   "screen" if D.screen else "no-screen"),
    "screen_factor": option("--screen-factor", "With --screen: proposals per generation, x a plain.", D.screen_factor),
    "screen_measure": option("--screen-measure", "With --screen: measure at most this share of a plain generation.",
                           D.screen_measure),
    "screen_explore": option("--screen-explore", "With --screen: also measure this share of the chosen, at random.",
                           D.screen_explore),
}  # fmt: skip


@app.callback(invoke_without_command=True)
def search(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(
        None, "--config", help="YAML/JSON search config (configs/search.yaml).", show_default=False
    ),
    generations: Optional[int] = SEARCH["generations"],
    init_models: Optional[int] = SEARCH["init_models"],
    mutations_per_parent: Optional[int] = SEARCH["mutations_per_parent"],
    crossovers: Optional[int] = SEARCH["crossovers"],
    random_mix: Optional[int] = SEARCH["random_mix"],
    max_unseen: Optional[int] = SEARCH["max_unseen"],
    seed: Optional[int] = SEARCH["seed"],
    min_params: Optional[float] = SEARCH["min_params"],
    max_params: Optional[float] = SEARCH["max_params"],
    objectives: Optional[str] = SEARCH["objectives"],
    screen: Optional[bool] = SEARCH["screen"],
    screen_factor: Optional[int] = SEARCH["screen_factor"],
    screen_measure: Optional[float] = SEARCH["screen_measure"],
    screen_explore: Optional[float] = SEARCH["screen_explore"],
    seq_len: Optional[int] = MEASURE["seq_len"],
    batch_size: Optional[int] = MEASURE["batch_size"],
    threads: Optional[int] = MEASURE["threads"],
    trials: Optional[int] = MEASURE["trials"],
    warmup: Optional[int] = MEASURE["warmup"],
    graph: Optional[GraphChoice] = MEASURE["graph"],
    opt_level: Optional[OptLevel] = MEASURE["opt_level"],
    adaptive: Optional[bool] = MEASURE["adaptive"],
    min_trials: Optional[int] = MEASURE["min_trials"],
    target_ci: Optional[float] = MEASURE["target_ci"],
    decode_context: Optional[int] = MEASURE["decode_context"],
    name: Optional[str] = typer.Option(
        None, "--name", help="Run name (a folder under runs/).", show_default="date-time-seedN"
    ),
    resume: Optional[str] = typer.Option(
        None,
        "--resume",
        metavar="RUN",
        help="Continue an interrupted run.",
        show_default=False,
        autocompletion=complete.runs,
    ),
    executor: ExecutorChoice = EXECUTOR["executor"],
    ray_address: Optional[str] = EXECUTOR["ray_address"],
    target: Optional[str] = EXECUTOR["target"],
    no_cache: bool = typer.Option(False, "--no-cache", help="Measure every architecture again."),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip the PNG plots."),
    json_out: bool = typer.Option(False, "--json", help="Print the run summary as JSON at the end."),
) -> None:
    """Search (default), or `lts search list` / `show RUN` / `rm RUN` for past runs."""
    if ctx.invoked_subcommand is not None:
        return
    from lts_cli.searching import execute, prepare

    place = where(ctx.params)
    changes = pick(ctx.params, SEARCH) | {"measure": pick(ctx.params, MEASURE)}
    if objectives is not None:
        changes["objectives"] = registry.parse(objectives)
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
        note(f"Interrupted. Every finished architecture is saved; continue with `lts search --resume {job.run.name}`")
        raise typer.Exit(130) from None
    from lts_cli.runs import summary

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
    from lts_cli.inventory import remove_run
    from lts_cli.runs import RunFolder

    confirm(f"remove the search run {run_name} ({RunFolder.open(run_name).path})", yes)
    note(f"removed {remove_run(run_name, on_note=note)}")
