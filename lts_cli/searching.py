"""The search service: prepare a new search (defaults < a config file < flags) or the resumption of an
interrupted one, and run it through the measurement service, saving its state after every
architecture and its outputs (runs.RunFolder) after every generation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lts_cli import folders, workspace
from lts_cli.config import load
from lts_cli.errors import LtsError
from lts_cli.measurer import Where
from lts_cli.measuring import Progress
from lts_cli.runs import RunFolder, new_name, new_run_path
from lts_cli.search import Search, SearchConfig
from lts_cli.search_state import SearchState

OnEvent = Callable[[str, SearchState, dict[str, Any]], None]


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
    changes: dict[str, Any] | None = None,
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


def same_machines(name: str, before: dict[str, Any] | None, now: dict[str, Any]) -> dict[str, Any]:
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
    progress: Progress | None = None,
    use_cache: bool = True,
    plots: bool = True,
    where: Where | None = None,
    on_note: Callable[[str], None] | None = None,
) -> tuple[Search, SearchState]:
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
    with open_store() as store:
        measurer = Measurer(
            config.measure, config.objectives, store, where, use_cache, f"search:{run.name}", progress, on_note
        )
        machines = {"fingerprints": measurer.fingerprints, "target": where.target}
        if job.state is not None:
            job.state.machines = same_machines(run.name, job.state.machines, machines)
        search = Search(config, measurer, screener=Screener(measurer) if config.screen else None)

        def handle(event: str, current: SearchState, data: dict[str, Any]) -> None:
            if event in ("arch_done", "arch_failed", "generation_ready"):
                run.save_state(current)
            elif event == "generation_done":
                run.save_state(current)
                run.write_outputs(search, current, plots=plots)
            if on_event:
                on_event(event, current, data)

        state = job.state
        if not job.new:
            if state is None:  # a run interrupted before its first state was saved
                state = search.start()
                state.machines = machines
                run.save_state(state)
            with workspace.in_use(run.path):
                return search, search.run(state, handle)
        state = search.start()
        state.machines = machines
        RunFolder.create(run.name, job.config, state)
        try:
            with workspace.in_use(run.path):  # `lts search rm` and `cache prune` leave it alone meanwhile
                return search, search.run(state, handle)
        except Exception:
            if not state.records:
                folders.remove_folder(run.path)  # made by this call, holds nothing measured
            raise
