"""`lts search`: run, resume, list and show Lightweight Transformer Search runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich import box
from rich.table import Table

from lts_cli import objectives as registry
from lts_cli.cli import complete
from lts_cli.cli.common import (
    ExecutorChoice,
    bar_progress,
    default,
    executor_options,
    note,
    objective_cell,
    objective_header,
    out,
    print_json,
)
from lts_cli.config import SearchConfig

app = typer.Typer(
    help="Run the Lightweight Transformer Search: an evolutionary Pareto search over the chosen objectives "
    "(default: non-embedding parameters, max; ONNX latency and ONNX memory, min) measured on this machine.",
)


def _d(field: str) -> str:
    return default(SearchConfig, field)


_EXECUTOR = executor_options()


@app.callback(invoke_without_command=True)
def search(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(
        None, "--config", help="YAML/JSON search config (see configs/search.yaml).", show_default=False
    ),
    generations: Optional[int] = typer.Option(
        None, "--generations", "-g", help="Generations.", show_default=_d("generations")
    ),
    init_models: Optional[int] = typer.Option(
        None, "--init-models", help="Random architectures in generation 1.", show_default=_d("init_models")
    ),
    mutations_per_parent: Optional[int] = typer.Option(
        None, "--mutations-per-parent", help="Mutations per Pareto member.", show_default=_d("mutations_per_parent")
    ),
    crossovers: Optional[int] = typer.Option(
        None, "--crossovers", help="Crossovers of random Pareto pairs per generation.", show_default=_d("crossovers")
    ),
    random_mix: Optional[int] = typer.Option(
        None, "--random-mix", help="Fresh random architectures per generation.", show_default=_d("random_mix")
    ),
    max_unseen: Optional[int] = typer.Option(
        None, "--max-unseen", help="Most new architectures per generation.", show_default=_d("max_unseen")
    ),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed.", show_default=_d("seed")),
    min_params: Optional[float] = typer.Option(
        None, "--min-params", help="Fewest non-embedding params allowed.", show_default=_d("min_params")
    ),
    max_params: Optional[float] = typer.Option(
        None, "--max-params", help="Most non-embedding params allowed.", show_default=_d("max_params")
    ),
    seq_len: Optional[int] = typer.Option(
        None, "--seq-len", help="Latency sequence length.", show_default=_d("measure.seq_len")
    ),
    batch_size: Optional[int] = typer.Option(
        None, "--batch-size", help="Latency batch size.", show_default=_d("measure.batch_size")
    ),
    threads: Optional[int] = typer.Option(
        None, "--threads", help="ONNX Runtime intra-op threads.", show_default=_d("measure.threads")
    ),
    trials: Optional[int] = typer.Option(
        None, "--trials", help="Most timed runs per architecture.", show_default=_d("measure.trials")
    ),
    adaptive: Optional[bool] = typer.Option(
        None,
        "--adaptive/--fixed-runs",
        help="Stop timing once the mean's 95% CI is within --target-ci (after --min-trials).",
        show_default="adaptive",
    ),
    min_trials: Optional[int] = typer.Option(
        None, "--min-trials", help="Runs before --adaptive may stop.", show_default=_d("measure.min_trials")
    ),
    target_ci: Optional[float] = typer.Option(
        None, "--target-ci", help="Relative CI half-width for --adaptive.", show_default=_d("measure.target_ci")
    ),
    objectives: Optional[str] = typer.Option(
        None,
        "--objectives",
        metavar="LIST",
        help=f"Comma-separated objectives, from: {', '.join(registry.REGISTRY)}.",
        show_default=",".join(registry.DEFAULT),
    ),
    decode_context: Optional[int] = typer.Option(
        None,
        "--decode-context",
        help="Tokens in the KV cache for decode_latency.",
        show_default=_d("measure.decode_context"),
    ),
    screen: Optional[bool] = typer.Option(
        None,
        "--screen/--no-screen",
        help="Propose more, predict latency with this machine's model, measure only what could reach the front.",
        show_default="no-screen",
    ),
    screen_factor: Optional[int] = typer.Option(
        None,
        "--screen-factor",
        help="With --screen: proposals per generation, x a plain one.",
        show_default=_d("screen_factor"),
    ),
    screen_measure: Optional[float] = typer.Option(
        None,
        "--screen-measure",
        help="With --screen: measure at most this share of what a plain generation would.",
        show_default=_d("screen_measure"),
    ),
    screen_explore: Optional[float] = typer.Option(
        None,
        "--screen-explore",
        help="With --screen: also measure this share of the chosen, at random.",
        show_default=_d("screen_explore"),
    ),
    name: Optional[str] = typer.Option(
        None, "--name", help="Run name (a folder under the workspace's runs/).", show_default="date-time-seedN"
    ),
    resume: Optional[str] = typer.Option(
        None,
        "--resume",
        metavar="RUN",
        help="Continue an interrupted run.",
        show_default=False,
        autocompletion=complete.runs,
    ),
    executor: ExecutorChoice = _EXECUTOR["executor"],
    ray_address: Optional[str] = _EXECUTOR["ray_address"],
    target: Optional[str] = _EXECUTOR["target"],
    no_cache: bool = typer.Option(False, "--no-cache", help="Measure every architecture again."),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip the PNG plots."),
    json_out: bool = typer.Option(False, "--json", help="Print the run summary as JSON at the end."),
) -> None:
    """Search (default), or `lts search list` / `lts search show RUN` for past runs."""
    if ctx.invoked_subcommand is not None:
        return
    from lts_cli.errors import UsageError
    from lts_cli.runs import Executing, execute, prepare

    if executor is ExecutorChoice.local and (ray_address or target):
        raise UsageError(f"{'--ray-address' if ray_address else '--target'} goes with --executor ray")

    flags: dict[str, Any] = {
        "generations": generations,
        "init_models": init_models,
        "mutations_per_parent": mutations_per_parent,
        "crossovers": crossovers,
        "random_mix": random_mix,
        "max_unseen": max_unseen,
        "seed": seed,
        "min_params": min_params,
        "max_params": max_params,
        "measure.seq_len": seq_len,
        "measure.batch_size": batch_size,
        "measure.threads": threads,
        "measure.trials": trials,
        "measure.adaptive": adaptive,
        "measure.min_trials": min_trials,
        "measure.target_ci": target_ci,
        "measure.decode_context": decode_context,
        "objectives": registry.parse(objectives) if objectives is not None else None,
        "screen": screen,
        "screen_factor": screen_factor,
        "screen_measure": screen_measure,
        "screen_explore": screen_explore,
    }
    job = prepare(name, resume, config, flags)
    if job.state is not None:
        note(f"resuming {job.run.name}: {len(job.state.records)} architectures already evaluated")
    if trials_note := job.config.measure.trials_note():
        note(trials_note)
    note(f"run {job.run.name}: {job.run.path}")

    ui = _SearchProgress(job.config.generations)
    try:
        with ui.live:
            found, final = execute(
                job,
                ui.on_event,
                ui.on_stage,
                use_cache=not no_cache,
                plots=not no_plots,
                executing=Executing(executor.value, ray_address, target),
                on_note=ui.note,
            )
    except KeyboardInterrupt:
        note(f"Interrupted. Every finished architecture is saved; continue with `lts search --resume {job.run.name}`")
        raise typer.Exit(130) from None
    _print_result(job.run.name, job.run.path, found, final, json_out)


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
            from lts_cli.space import Arch

            arch = Arch(**data["candidate"].arch)
            self.current = f"{arch.archid[:12]} {arch.short()}"
            self.live.update(self.archs, description=self.current)
        elif event == "arch_done":
            self.live.advance(self.archs)
        elif event == "arch_failed":
            self.live.advance(self.archs)
            f = data["failed"]
            self.note(f"{f.archid[:12]} failed and is left out of the search: {f.reason}")
        elif event == "generation_done":
            g = data["entry"]
            self.live.update(self.gens, completed=g.generation)
            new = ", ".join(a[:12] for a in g.new_on_front[:4]) + (" ..." if len(g.new_on_front) > 4 else "")
            self.live.console.print(
                f"generation {g.generation}: evaluated {g.evaluated} ({g.cached} cached), Pareto {g.pareto_size}, "
                f"hypervolume {g.hypervolume:.4f}, new on front: {new or 'none'}, {g.seconds:.1f} s{_screened(g)}",
                highlight=False,
                soft_wrap=True,
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


def _front_table(rows: list[dict[str, Any]], objectives: list[str], title: str) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), pad_edge=False)
    for col in ("archid", "L", "d_model", "d_inner", "heads", *(objective_header(o) for o in objectives)):
        table.add_column(col, justify="left" if col == "archid" else "right", no_wrap=col == "archid")
    for r in rows:
        table.add_row(
            r["archid"][:16],
            str(r["n_layer"]),
            str(r["d_model"]),
            str(r["d_inner"]),
            str(r["n_head"]),
            *(objective_cell(o, r.get(o)) for o in objectives),
        )
    return table


def _print_result(name: str, path: Path, found: Any, state: Any, json_out: bool) -> None:
    from lts_cli.runs import summary

    data = summary(name, found, state)
    if json_out:
        print_json({**data, "path": str(path)})
        return
    front = data["front"]
    out.print(
        _front_table(front, list(data["objectives"]), f"Pareto front of {name} ({len(front)} of {len(state.records)})")
    )
    t = data["timings"]
    out.print(
        f"hypervolume {data['hypervolume']['per_generation'][-1]:.4f}; {t['evaluated']} evaluated "
        f"({t['cached']} cached) in {t['search_wall_s']:.0f} s",
        highlight=False,
    )
    out.print(f"outputs: {path} (results.csv, summary.json, pareto/, *.png)", highlight=False)


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
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), pad_edge=False)
    for col in ("run", "status", "generations", "evaluated", "Pareto", "hypervolume", "objectives"):
        table.add_column(col, justify="left" if col in ("run", "status", "objectives") else "right")
    for r in rows:
        if r["status"] == "damaged":
            table.add_row(r["name"], "damaged", "-", "-", "-", "-", r["problem"])
            continue
        hv = f"{r['hypervolume']:.4f}" if r["hypervolume"] is not None else "-"
        table.add_row(
            r["name"],
            r["status"],
            f"{r['generations_done']}/{r['generations']}",
            str(r["evaluated"]),
            str(r["pareto_size"]),
            hv,
            ",".join(registry.get(o).short for o in r["objectives"]),
        )
    out.print(table)


@app.command("show")
def show(
    run_name: str = typer.Argument(
        ..., metavar="RUN", help="Run name (see `lts search list`).", autocompletion=complete.runs
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the run summary as JSON."),
) -> None:
    """Show a run's Pareto front, hypervolume per generation and outputs."""
    from lts_cli.runs import finished_summary

    data = finished_summary(run_name)
    if json_out:
        print_json(data)
        return
    out.print(_front_table(data["front"], list(data["objectives"]), f"Pareto front of {run_name} ({data['status']})"))
    hv = ", ".join(f"{v:.4f}" for v in data["hypervolume"]["per_generation"])
    out.print(f"hypervolume per generation: {hv}", highlight=False)
    t = data["timings"]
    out.print(
        f"{data['generations_done']}/{data['generations']} generations, {t['evaluated']} evaluated "
        f"({t['cached']} cached), {t['search_wall_s']:.0f} s; outputs: {data['path']}",
        highlight=False,
    )


@app.command("rm")
def remove(
    run_name: str = typer.Argument(
        ..., metavar="RUN", help="Run name (see `lts search list`).", autocompletion=complete.runs
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
) -> None:
    """Delete a search run's folder (its measurements stay cached in the workspace)."""
    from lts_cli.cli.common import confirm
    from lts_cli.inventory import remove_run
    from lts_cli.runs import RunFolder

    confirm(f"remove the search run {run_name} ({RunFolder.open(run_name).path})", yes)
    note(f"removed {remove_run(run_name, on_note=note)}")
