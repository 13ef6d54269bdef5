"""Search run folders: the effective config, the resumable state and every output, written atomically.

runs/<name>/
  config.yaml            the effective config (defaults < --config file < flags)
  state.json             the resumable search state, rewritten after every architecture
  results.csv            every measured architecture (archai's columns + the arch fields)
  screened.csv           a screened search's predicted, unmeasured candidates
  pareto/<archid>.json   the current Pareto members as gallery-style configs
  summary.json           front, hypervolume per generation, timings
  *.png                  params vs latency, params vs memory, hypervolume per generation
"""

from __future__ import annotations

import errno
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lts_cli import folders, results_csv, workspace
from lts_cli import objectives as registry
from lts_cli.config import as_plain, from_file
from lts_cli.errors import LtsError
from lts_cli.search import Search
from lts_cli.search_config import EVOLUTION, SearchConfig
from lts_cli.search_state import SearchState
from lts_cli.space import ARCH_FIELDS, Arch
from lts_cli.views import Block, JsonObject, Lines, Note, Table

if TYPE_CHECKING:
    from lts_cli.gallery import Row

STATE = "state.json"  # the resumable search state, rewritten after every architecture


def new_name(seed: int) -> str:
    return time.strftime("%Y%m%d-%H%M%S") + f"-seed{seed}"


@dataclass
class RunFolder:
    name: str
    path: Path

    @classmethod
    def create(cls, name: str, config: SearchConfig, state: SearchState) -> RunFolder:
        """The run's folder with its config and first state, appearing in one rename (never half made)."""
        import yaml

        path = new_run_path(name)
        try:
            with folders.staged_folder(path) as tmp:
                (tmp / workspace.RUN_MARKER).write_text(
                    yaml.safe_dump(as_plain(config), sort_keys=False), encoding="utf-8"
                )
                (tmp / STATE).write_text(json.dumps(state.to_dict()), encoding="utf-8")
        except OSError as exc:
            raise LtsError(f"cannot create the run folder {path}: {exc.strerror or exc}") from exc
        return cls(name, path)

    @classmethod
    def open(cls, name: str) -> RunFolder:
        path = workspace.runs_dir() / name
        if not (path / STATE).is_file() and not (path / workspace.RUN_MARKER).is_file():
            known = ", ".join(r.name for r in list_runs()[:5]) or "none yet"
            raise LtsError(
                f"no search run named {name!r} in {path.parent} (recent runs: {known}); see `lts search list`"
            )
        return cls(name, path)

    def config(self) -> SearchConfig:
        return from_file(SearchConfig, self.path / workspace.RUN_MARKER)

    def state(self) -> SearchState | None:
        path = self.path / STATE
        if not path.is_file():
            return None
        try:
            return SearchState.from_dict(json.loads(path.read_text(encoding="utf-8")), str(path))
        except (ValueError, KeyError, TypeError, LtsError) as exc:
            raise LtsError(
                f"{path} is damaged ({exc}); this run cannot be resumed: start a new one "
                f"(`lts search rm {self.name}` removes this one, keeping any file of yours)"
            ) from exc

    def summary(self) -> JsonObject | None:
        path = self.path / "summary.json"
        if not path.is_file():
            return None
        try:
            data: JsonObject = json.loads(path.read_text(encoding="utf-8"))
            _check_summary(data)
        except (ValueError, TypeError, KeyError) as exc:
            raise LtsError(
                f"{path} is damaged ({exc}); results.csv and state.json beside it still hold the run"
            ) from exc
        return data

    def _write(self, name: str, data: bytes) -> None:
        """Atomic write inside the run folder, with errors a user can act on."""
        if not self.path.is_dir():
            raise LtsError(
                f"the run folder {self.path} was deleted while the search was running; measurements so far are "
                "cached in the workspace, so the same search (same seed) repeats them at no cost"
            )
        target = self.path / name
        try:
            workspace.atomic_write_bytes(target, data)
            folders.record_written(self.path, name)
        except OSError as exc:
            hint = "free some space, then " if exc.errno == errno.ENOSPC else ""
            raise LtsError(
                f"cannot write {target} ({exc.strerror or exc}); {hint}continue with `lts search --resume {self.name}` "
                "(what was written before is intact)"
            ) from exc

    def save_state(self, state: SearchState) -> None:
        self._write(STATE, json.dumps(state.to_dict()).encode())

    def write_outputs(self, search: Search, state: SearchState, plots: bool = True) -> None:
        """Results CSV, Pareto configs, summary.json and plots for the state as it is now."""
        front = search.front(state)
        front_ids = {r.archid for r in front}
        self._write("results.csv", results_csv.results(search.config.objectives, state.records, front_ids).encode())
        if search.screens:
            self._write("screened.csv", results_csv.screened(search.config.objectives, state.screened).encode())
        pareto_dir = self.path / "pareto"
        pareto_dir.mkdir(exist_ok=True)
        for record in front:
            self._write(
                f"pareto/{record.archid}.json", (json.dumps(Arch(**record.arch).to_config(), indent=2) + "\n").encode()
            )
        written = set(folders.read_manifest(self.path) or ())
        for stale in pareto_dir.glob("*.json"):
            if f"pareto/{stale.name}" in written and stale.stem not in front_ids:  # written here earlier; nothing else
                stale.unlink()
        self._write("summary.json", json.dumps(summary(self.name, search, state), indent=2).encode())
        if plots:
            from lts_cli.plots import write_plots

            for name, png in write_plots(search, state).items():
                self._write(name, png)


def _check_summary(data: Any) -> None:
    """The fields of summary.json that lts reads back, checked for their types (ValueError if not)."""
    numbers = (int, float)
    if not isinstance(data, dict) or not isinstance(data.get("front"), list):
        raise ValueError("no front")
    if not all(isinstance(m, dict) and isinstance(m.get("archid"), str) for m in data["front"]):
        raise ValueError("a front member without its archid")
    hv = data.get("hypervolume", {}).get("per_generation")
    if not isinstance(hv, list) or not all(isinstance(v, numbers) for v in hv):
        raise ValueError("hypervolume.per_generation is not a list of numbers")
    timings = data.get("timings")
    if not isinstance(timings, dict) or not all(isinstance(timings.get(k), numbers) for k in ("evaluated", "cached")):
        raise ValueError("timings are not numbers")
    if not isinstance(data.get("generations_done"), int) or not isinstance(data.get("objectives"), dict):
        raise ValueError("generations_done or objectives of the wrong type")


def front_rows(search: Search, state: SearchState) -> list[JsonObject]:
    """The front sorted by non-embedding parameters, as data."""
    front = sorted(search.front(state), key=lambda r: r.values[registry.QUALITY])
    return [{"archid": r.archid, **r.arch, **r.values, "generation": r.generation} for r in front]


def front_report(name: str) -> list[Row]:
    """A run's Pareto members as gallery rows, with this machine's measurements (`gallery list --run`)."""
    from lts_cli.gallery import row
    from lts_cli.store import open_store

    summary = RunFolder.open(name).summary()
    if summary is None:
        raise LtsError(f"run {name!r} has no finished generation yet; `lts search --resume {name}` continues it")
    with open_store() as store:
        rows = []
        for member in summary["front"]:
            arch = Arch(**{k: member[k] for k in ARCH_FIELDS})
            values = {o: member.get(o) for o in summary["objectives"]}
            rows.append(row(arch.archid, arch, None, store, run=name, run_values=values))
        return rows


@dataclass(frozen=True)
class RunSummary:
    """A run's summary.json (front, hypervolume per generation, timings) and where the run is."""

    path: Path
    document: JsonObject

    def to_dict(self) -> JsonObject:
        return {**self.document, "path": str(self.path)}

    def view(self) -> list[Block]:
        d = self.document
        names = list(d["objectives"])
        rows = [[r["archid"][:16], *(str(r[k]) for k in ARCH_FIELDS[:4]),
                 *(registry.get(o).format(r.get(o)) for o in names)] for r in d["front"]]  # fmt: skip
        headers = ["archid", "L", "d_model", "d_inner", "heads", *(registry.get(o).header() for o in names)]
        hv, t = d["hypervolume"]["per_generation"], d["timings"]
        return [
            Table(headers, rows, f"Pareto front of {d['name']} ({len(rows)} members, {d['status']})"),
            Lines([f"hypervolume per generation: {', '.join(f'{v:.4f}' for v in hv)}",
                   *optimum_line(d["hypervolume"]), *([f"stopped: {d['stopped']}"] if d.get("stopped") else []),
                   (f"{d['generations_done']}/{d['generations']} generations, " if d["generations"] else
                    f"{d['generations_done']} rounds, ") + f"{t['evaluated']} evaluated "
                   f"({t['cached']} cached) in {t['search_wall_s']:.0f} s; outputs: {self.path}"]),
        ]  # fmt: skip


def optimum_line(hv: JsonObject) -> list[str]:
    """The front's share of the space's predicted optimum at the end, where it was predicted."""
    shares, best = hv.get("share_of_predicted_optimum") or [None], hv.get("predicted_optimum_per_generation") or [None]
    if shares[-1] is None:
        return []
    return [f"front at {shares[-1]:.1%} of the predicted optimum of the space (hypervolume {best[-1]:.4f}, predicted)"]


def summary(name: str, search: Search, state: SearchState) -> JsonObject:
    records = state.records
    timing = sum(r.timing_s for r in records if not r.cached)
    measured = [r for r in records if not r.cached]
    return {
        "name": name,
        "status": "finished" if state.finished else "incomplete",
        "generations_done": len(state.log),
        "generations": search.config.generations if search.config.strategy == EVOLUTION else None,
        "objectives": {name: _describe(name) for name in search.config.objectives},
        "measure": asdict(search.config.measure),
        "front": front_rows(search, state),
        "strategy": search.config.strategy,
        "stopped": state.stopped,
        "hypervolume": {
            "per_generation": [g.hypervolume for g in state.log],
            "predicted_optimum_per_generation": [(g.optimum or {}).get("hypervolume") for g in state.log],
            "share_of_predicted_optimum": [(g.optimum or {}).get("share") for g in state.log],
            "reference_point": [1.0] * len(search.config.objectives),
            "normalization_bounds": state.bounds,
            "definition": "see Search.hypervolume: objectives divided by their bound for the space's largest arch",
            "predicted_optimum": "predicted, not measured: the front of every architecture of the space, measured "
            "values where measured, else exact parameters and file sizes with predicted latencies (whole_space.py)",
        },
        "generations_log": [asdict(g) for g in state.log],
        "timings": {
            "search_wall_s": state.elapsed_s,
            "evaluated": len(records),
            "cached": len(records) - len(measured),
            "measured": len(measured),
            "timed_runs_s": timing,
            "overhead_per_measured_arch_s": (sum(r.eval_s for r in measured) - timing) / len(measured)
            if measured
            else 0.0,
        },
        "screening": {
            "factor": search.config.screen_factor,
            "measure": search.config.screen_measure,
            "explore": search.config.screen_explore,
            "predicted_not_measured": len(state.screened),
            "definition": "each generation after the first: screen_factor x the proposals, latency predicted by a "
            "model of this machine, measured only if it could join the measured front, at most screen_measure x a "
            "plain generation's count (generations_log.screening)",
        }
        if search.screens
        else None,
        "machines": state.machines,
        "failed": [
            {"archid": f.archid, "generation": f.generation, "arch": f.arch, "reason": f.reason} for f in state.failed
        ],
    }


def finished_summary(name: str) -> RunSummary:
    """A run's summary (`lts search show`), once it has finished a generation."""
    run = RunFolder.open(name)
    data = run.summary()
    if data is None:
        raise LtsError(f"run {name!r} has not finished a generation yet; `lts search --resume {name}` continues it")
    return RunSummary(run.path, data)


def _describe(name: str) -> JsonObject:
    o = registry.get(name)
    return {"maximize": o.maximize, "unit": o.unit, "kind": o.kind, "label": o.label, "definition": o.describe}


def list_runs() -> list[RunFolder]:
    root = workspace.runs_dir()
    if not root.is_dir():
        return []
    runs = [RunFolder(p.name, p) for p in root.iterdir() if p.is_dir() and (p / workspace.RUN_MARKER).is_file()]
    return sorted(runs, key=lambda r: r.path.stat().st_mtime, reverse=True)


@dataclass(frozen=True)
class RunRow:
    name: str
    path: str
    status: str  # finished | incomplete | damaged
    problem: str | None = None  # a damaged run's
    objectives: tuple[str, ...] = ()
    generations_done: int = 0
    generations: int = 0  # 0: as many as the whole-space strategy needs
    evaluated: int = 0
    pareto_size: int = 0
    hypervolume: float | None = None

    def to_dict(self) -> JsonObject:
        if self.status == "damaged":
            return {"name": self.name, "path": self.path, "status": self.status, "problem": self.problem}
        return {k: v for k, v in asdict(self).items() if k != "problem"} | {"objectives": list(self.objectives)}

    def cells(self) -> list[str]:
        if self.status == "damaged":
            return [self.name, "damaged", "-", "-", "-", "-", self.problem or ""]
        hv = f"{self.hypervolume:.4f}" if self.hypervolume is not None else "-"
        shorts = ",".join(registry.get(o).short for o in self.objectives)
        done = f"{self.generations_done}/{self.generations}" if self.generations else str(self.generations_done)
        return [self.name, self.status, done, str(self.evaluated),
                str(self.pareto_size), hv, shorts]  # fmt: skip


@dataclass(frozen=True)
class Runs:
    """`lts search list`: one row per run, newest first (a damaged run is listed as such)."""

    rows: list[RunRow]

    def to_dict(self) -> list[JsonObject]:
        return [r.to_dict() for r in self.rows]

    def view(self) -> list[Block]:
        if not self.rows:
            return [Note("no search runs yet; start one with `lts search`")]
        headers = ["run", "status", "generations", "evaluated", "Pareto", "hypervolume", "objectives"]
        return [Table(headers, [r.cells() for r in self.rows], left=2)]


def listing() -> Runs:
    """`lts search list` as data."""
    rows = []
    for run in list_runs():
        try:
            state, summary, config = run.state(), run.summary() or {}, run.config()
        except LtsError as exc:
            rows.append(RunRow(run.name, str(run.path), "damaged", str(exc)))
            continue
        rows.append(
            RunRow(
                run.name,
                str(run.path),
                "finished" if state and state.finished else "incomplete",
                objectives=tuple(config.objectives),
                generations_done=summary.get("generations_done", 0),
                generations=config.generations if config.strategy == EVOLUTION else 0,
                evaluated=len(state.records) if state else 0,
                pareto_size=len(summary.get("front", [])),
                hypervolume=(summary.get("hypervolume", {}).get("per_generation") or [None])[-1],
            )
        )
    return Runs(rows)


def new_run_path(name: str) -> Path:
    workspace.check_name(name)
    path = workspace.runs_dir() / name
    if path.exists():
        raise LtsError(f"a run named {name!r} exists already ({path}); pick another --name or --resume it")
    return path
