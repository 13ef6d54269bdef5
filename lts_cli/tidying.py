"""Removing what lts made and nothing else (a model and its exports, a search run, caches nothing
needs), and finding the records it keeps that no longer read (`lts cache check`)."""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from lts_cli import folders, pretrained, workspace
from lts_cli.errors import LtsError
from lts_cli.inventory import SOURCES, ModelEntry, report
from lts_cli.views import Block, JsonObject, Note, fmt_bytes


@dataclass
class ModelRemoval:
    """What `lts models rm` deletes: the folders lts made (each with its plan: files, and the files in
    it lts did not write, which stay), and single files (a pulled model's record, Hub cache files)."""

    entry: ModelEntry
    folders: list[folders.Removal]
    files: list[Path]

    def size_bytes(self) -> int:
        single = sum(p.lstat().st_size for p in self.files if p.exists() and not p.is_dir())
        return single + sum(plan.size_bytes() for plan in self.folders)

    def kept(self) -> list[Path]:
        return [path for plan in self.folders for path in plan.kept]

    def to_dict(self) -> JsonObject:
        return {"removed": [str(r.folder) for r in self.folders] + [str(p) for p in self.files],
                "kept": [str(p) for p in self.kept()]}  # fmt: skip

    def question(self) -> str:
        return f"remove {self.entry.id} ({SOURCES[self.entry.source]}), {fmt_bytes(self.size_bytes())}"

    def lines(self) -> list[str]:
        """One line per folder or file removed, with counts and sizes, then the files kept."""
        out = []
        for plan in self.folders:
            out.append(f"{plan.folder}: {len(plan.files)} file(s), {fmt_bytes(plan.size_bytes())}")
            out += [f"  with the export {nested}" for nested in plan.nested]
        for path in self.files:
            single = path.exists() and not path.is_dir()
            out.append(f"{path}" + (f" ({fmt_bytes(path.lstat().st_size)})" if single else ""))
        out += [f"keeps {path} (not written by lts)" for path in self.kept()]
        return out


def removal_plan(entry: ModelEntry, hub_cache: bool = False) -> ModelRemoval:
    """What `remove_model` deletes for `entry`; an error if lts did not make it."""
    if entry.source == "folder":
        marker = workspace.TRAINED_MARKER
        raise LtsError(f"{entry.path} was not made by lts (no {marker}); nothing was touched; remove it yourself")
    in_use = [p for p in [Path(entry.path), *map(Path, entry.exports)] if workspace.busy(p)]
    if in_use:
        raise LtsError(f"{in_use[0]} is in use by a running lts command; nothing was touched; try again once it ends")
    if entry.source in ("trained", "training"):
        return ModelRemoval(entry, [folders.removal_plan(Path(entry.path))], [])
    pulled = pretrained.registered(entry.id)
    assert pulled is not None
    exports = [folders.removal_plan(Path(p)) for p in entry.exports]
    return ModelRemoval(
        entry, exports, [workspace.pulled_record(entry.id), *(_hub_cache_files(pulled) if hub_cache else [])]
    )


def remove_model(plan: ModelRemoval, on_note: folders.OnNote | None = None) -> list[str]:
    """Delete what `plan` lists (files a user added to lts's folders stay, and are named); what was removed."""
    for removal in plan.folders:
        folders.remove(removal, on_note)
    for path in plan.files:
        if path.is_dir() and not path.is_symlink():
            folders.remove(folders.Removal(path), on_note)  # the Hub subfolder, emptied above
        elif path.exists() or path.is_symlink():
            path.unlink()
    exports_root = workspace.home() / workspace.EXPORTS / plan.entry.id
    if plan.entry.source == "pulled" and exports_root.is_dir() and not any(exports_root.iterdir()):
        exports_root.rmdir()
    return [str(r.folder) for r in plan.folders] + [str(p) for p in plan.files]


def _hub_cache_files(pulled: pretrained.Pulled) -> list[Path]:
    """The subfolder's links in the Hub cache and the blobs no other link of the repository uses."""
    links = [p for p in pulled.folder().rglob("*") if p.is_symlink() or p.is_file()]
    blobs = {p.resolve() for p in links if p.is_symlink()}
    snapshots = pulled.folder().parent.parent  # .../models--org--name/snapshots
    mine = set(links)
    used_elsewhere = {
        p.resolve() for p in snapshots.rglob("*") if p.is_symlink() and p not in mine and p.resolve() in blobs
    }
    return links + sorted(blobs - used_elsewhere) + [pulled.folder()]


def remove_run(name: str, on_note: folders.OnNote | None = None) -> str:
    """Delete what lts wrote in a search run's folder (files a user added stay, and are named)."""
    from lts_cli.runs import RunFolder

    run = RunFolder.open(name)
    if workspace.busy(run.path):
        raise LtsError(f"the search {name!r} is running; nothing was touched; stop it first (Ctrl-C)")
    folders.remove_folder(run.path, on_note)
    return str(run.path)


def prune(on_note: folders.OnNote | None = None) -> list[str]:
    """Remove token caches no unfinished training needs, exports whose model is gone, and stale
    leftovers of interrupted writes (files a user added to them stay, and are named); what was removed."""
    removed = []
    for path in map(Path, report().prunable):
        if workspace.busy(path):  # a running command uses it (a training's token cache, say)
            if on_note:
                on_note(f"kept {path}: in use by a running lts command")
            continue
        removed.append(str(path))
        if ".tmp-" in path.name:
            shutil.rmtree(path, ignore_errors=True)  # a staging folder: lts made it and everything in it
        else:
            folders.remove_folder(path, on_note)
    return removed


# ---- damaged records ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    what: str  # a cached measurement's row, or a file
    where: str  # the row's key and architecture, or the file's path
    problem: str
    repair: str  # what --repair does about it


@dataclass(frozen=True)
class Check:
    """`lts cache check`: what does not read, and whether it was repaired."""

    found: list[Problem]
    repaired: bool

    def to_dict(self) -> JsonObject:
        return {"damaged": [asdict(p) for p in self.found], "repaired": self.repaired}

    def view(self) -> list[Block]:
        blocks: list[Block] = [Note(f"{p.what} {p.where}: {p.problem}" + (f"; {p.repair}" if self.repaired else ""))
                               for p in self.found]  # fmt: skip
        if not self.found:
            blocks.append(Note("everything lts keeps reads"))
        elif not self.repaired:
            blocks.append(Note("`lts cache check --repair` drops the damaged rows and records lts can rebuild"))
        return blocks


def check(repair: bool = False) -> Check:
    """Every record lts keeps that does not read (measurement rows, pulled-model records, proxy
    results, run states and summaries); with `repair`, drop the rows and the records lts can rebuild
    (a run is only named: `lts search rm` removes it)."""
    from lts_cli import proxy
    from lts_cli.runs import list_runs
    from lts_cli.store import open_store

    found: list[Problem] = []
    home = workspace.home()
    if (home / workspace.DB_NAME).is_file():
        with open_store() as store:
            rows = store.damaged()
            found += [Problem("measurement", f"{r.key[:12]} ({r.archid[:16]})", r.problem, "dropped") for r in rows]
            if repair and rows:
                store.drop_measurements([r.key for r in rows])
    for record in sorted((home / workspace.PULLED).glob("*.json")):
        try:
            pretrained.registered(record.stem)
        except LtsError as exc:
            found.append(Problem("pulled model record", str(record), str(exc), "removed (pull it again)"))
            if repair:
                record.unlink()
    for result in sorted((home / workspace.PROXY / "results").glob("*.json")):
        problem = proxy.damaged(result)
        if problem is not None:
            found.append(Problem("proxy result", str(result), problem, "removed (trained again when needed)"))
            if repair:
                result.unlink()
    for run in list_runs():
        try:
            run.state()
            run.summary()
        except LtsError as exc:
            found.append(Problem("search run", str(run.path), str(exc), f"kept: `lts search rm {run.name}`"))
    return Check(found, repair)
