"""The search service: prepare a new search (defaults < a config file < flags) or the resumption of an
interrupted one, and run it through the measurement service, saving its state after every
architecture and its outputs (runs.RunFolder) after every generation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lts_cli import folders, workspace
from lts_cli.config import load
from lts_cli.errors import LtsError
from lts_cli.measurer import Where
from lts_cli.runs import RunFolder, RunSummary, new_name, new_run_path, summary
from lts_cli.search import Search
from lts_cli.search_config import SearchConfig
from lts_cli.search_state import GenerationLog, SearchState
from lts_cli.views import Event, JsonObject, OnEvent


@dataclass
class SearchJob:
    """A search to run: a new one (no state yet, no folder yet) or one to resume."""

    run: RunFolder
    config: SearchConfig
    state: SearchState | None  # None: nothing evaluated yet
    new: bool  # the run folder is made when the search starts


def prepare(
    name: str | None = None,
    resume: str | None = None,
    config_file: Path | None = None,
    changes: JsonObject | None = None,
) -> SearchJob:
    """A new search from defaults < `config_file` < `changes` (config.updated's), or (`resume`) an
    interrupted run with its recorded config, which then takes no other settings."""
    from lts_cli.config import given
    from lts_cli.errors import ConfigError

    changes = changes or {}
    if resume is not None:
        extra = sorted(given(changes)) + ["config"] * (config_file is not None) + ["name"] * (name is not None)
        if extra:
            drop = ", ".join(f"{{{i}}}" for i in range(1, len(extra) + 1))
            raise ConfigError(["resume", *extra], f"{{0}} continues a run with its recorded config; drop {drop}")
        run = RunFolder.open(resume)
        state = run.state()
        if state is not None and state.finished:
            raise LtsError(
                f"run {resume!r} has finished; `lts search show {resume}` shows it, `lts search` starts a new one"
            )
        return SearchJob(run, run.config(), state, new=False)
    config = load(SearchConfig, config_file, **changes)
    name = name or new_name(config.seed)
    return SearchJob(RunFolder(name, new_run_path(name)), config, None, new=True)


def same_machines(name: str, before: JsonObject | None, now: JsonObject) -> JsonObject:
    """What a resumed run measures on: where it started (refused if that is other hardware, unless
    both name the same target label, whose machines the user declared alike)."""
    if before is None:  # a run from before lts recorded this
        return now
    if before.get("target") != now["target"]:
        was = f"--target {before['target']}" if before.get("target") else "no --target"
        raise LtsError(f"run {name!r} was measured with {was}; resume it the same way")
    if now["target"] is not None:
        return {
            **now,
            "fingerprints": before["fingerprints"]
            + [f for f in now["fingerprints"] if f not in before["fingerprints"]],
        }
    if sorted(map(str, before["fingerprints"])) != sorted(map(str, now["fingerprints"])):
        was = "; ".join(
            f"{f.get('cpu')} ({f.get('cores')} cores, onnxruntime {f.get('onnxruntime')})"
            for f in before["fingerprints"]
        )
        raise LtsError(
            f"run {name!r} was measured on {was}, and this search would measure elsewhere: latencies from different "
            "machines do not belong in one front; resume it where it started (the same --executor and cluster), "
            "or start a new run"
        )
    return now


def execute(
    job: SearchJob,
    on_event: OnEvent | None = None,
    use_cache: bool = True,
    plots: bool = True,
    where: Where | None = None,
) -> RunSummary:
    """Run (or continue) a search, saving its state after every architecture and its outputs after
    every generation. Measurements go through the workspace cache. A new run's folder appears
    with its first state; if the search fails before it has evaluated anything, the folder goes
    again (a Ctrl-C keeps it: the run resumes). A run keeps measuring where it started: resuming it
    on other hardware is refused (latencies of different machines do not share a front)."""
    from lts_cli.measurer import Measurer
    from lts_cli.predictor import Screener
    from lts_cli.store import open_store

    run = job.run
    where = where or Where()
    config = job.config
    told = _Told(on_event or (lambda e: None))
    with open_store() as store:
        measurer = Measurer(
            config.measure, config.objectives, store, where, use_cache, f"search:{run.name}", told.stage, told.note
        )
        machines = {"fingerprints": measurer.fingerprints, "target": where.target}
        if job.state is not None:
            job.state.machines = same_machines(run.name, job.state.machines, machines)
        search = Search(config, measurer, screener=Screener(measurer))

        def handle(event: str, current: SearchState, data: dict[str, Any]) -> None:
            if event in ("arch_done", "arch_failed", "generation_ready"):
                run.save_state(current)
            elif event == "generation_done":
                run.save_state(current)
                run.write_outputs(search, current, plots=plots)
            told(event, current, data)

        state = job.state
        if not job.new:
            if state is None:  # a run interrupted before its first state was saved
                state = search.start()
                state.machines = machines
                run.save_state(state)
            with workspace.in_use(run.path):
                final = search.run(state, handle)
            return RunSummary(run.path, summary(run.name, search, final))
        state = search.start()
        state.machines = machines
        RunFolder.create(run.name, job.config, state)
        try:
            with workspace.in_use(run.path):  # `lts search rm` and `cache prune` leave it alone meanwhile
                final = search.run(state, handle)
        except Exception:
            if not state.records:
                folders.remove_folder(run.path)  # made by this call, holds nothing measured
            raise
        return RunSummary(run.path, summary(run.name, search, final))


class _Told:
    """The search loop's events as views.Events: the generations' bar, the bar of this generation's
    architectures (with the stage of the one being measured) and a line per generation."""

    def __init__(self, on_event: OnEvent) -> None:
        self.emit = on_event
        self.current = ""

    def __call__(self, event: str, state: SearchState, data: dict[str, Any]) -> None:
        if event == "generation_start":
            g = state.generation
            self.emit(Event(event, done=g - 1, label=f"generation {g}", data=g))
            done = sum(1 for r in state.records if r.generation == g)
            self.emit(Event(event, level=1, restart=True, total=data["size"], done=done))
        elif event == "arch_start":
            c = data["candidate"]
            self.current = f"{c.archid[:12]} L{c.arch['n_layer']} d{c.arch['d_model']}"
            self.emit(Event(event, level=1, label=self.current, data=c))
        elif event == "arch_done":
            self.emit(Event(event, level=1, advance=True, data=data["record"]))
        elif event == "arch_failed":
            f = data["failed"]
            line = f"{f.archid[:12]} failed and is left out of the search: {f.reason}"
            self.emit(Event(event, line, level=1, advance=True, data=f))
        elif event == "generation_done":
            g = data["entry"]
            self.emit(Event(event, describe(g), done=g.generation, data=g))
        else:
            self.emit(Event(event, data=state))

    def stage(self, stage: str, done: int, total: int) -> None:
        detail = f"{stage} {done + 1}/{total}" if total > 1 else stage
        self.emit(Event("stage", level=1, label=f"{self.current} {detail}"))

    def note(self, text: str) -> None:
        self.emit(Event("note", text))


def describe(g: GenerationLog) -> str:
    """A generation in one line: what it evaluated, the front, hypervolume, and how it was screened."""
    new = ", ".join(a[:12] for a in g.new_on_front[:4]) + (" ..." if len(g.new_on_front) > 4 else "")
    line = (f"generation {g.generation}: evaluated {g.evaluated} ({g.cached} cached), Pareto {g.pareto_size}, "
            f"hypervolume {g.hypervolume:.4f}, new on front: {new or 'none'}, {g.seconds:.1f} s")  # fmt: skip
    o = g.optimum or {}
    if "share" in o:
        line += f"; front at {o['share']:.1%} of the predicted optimum of the space ({o['hypervolume']:.4f})"
    s = g.screening
    if not s:
        return line
    if "not_screened" in s:
        return line + f"; not screened (too few measurements for a latency model): measured {s['measured']}"
    errors = ", ".join(f"{name} {e['median']:.1%} median, {e['p90']:.1%} p90" for name, e in s["error"].items())
    of = f"{s['proposed']} proposed" if "proposed" in s else f"{s['predicted']} predicted"
    chose = f"{s['measured']} of {of}"
    return line + f"; screened: measured {chose}; prediction error {errors or '-'}"
