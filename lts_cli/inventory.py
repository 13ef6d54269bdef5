"""What the workspace holds (models, exports, token caches, measurements, leftovers of interrupted
writes), how big it is, and removing what lts made and nothing else.

Recognised as lts's: a trained model has `metrics.json`, an unfinished training `train.json`, an
export `export.json`, a token cache `meta.json`, a pulled model its record in `pulled/`, a search
run `config.yaml`; leftovers are the `.NAME.tmp-*` / `.NAME.old-*` folders of atomic writes. A
model folder a user put into `models/` is listed as such and never removed.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lts_cli import folders, pretrained, workspace
from lts_cli.errors import LtsError, NotFound, UsageError
from lts_cli.space import Arch, unique

SOURCES = ("trained", "training", "pulled", "folder")
LEFTOVER_AGE_S = 3600.0  # an atomic write's temporary folder older than this belongs to no running lts


@dataclass
class ModelEntry:
    id: str
    source: str  # trained (here) | training (unfinished) | pulled (from the Hub) | folder (put there by a user)
    path: str
    size_bytes: int
    val_perplexity: float | None = None
    arch: dict[str, int] | None = None  # the architecture's fields (n_layer, d_model, d_inner, n_head, ...)
    non_embedding_params: int | None = None
    config: dict[str, int] | None = None  # the same in transformers' config.json keys (n_embd, n_inner, ...)
    exports: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def size(path: Path) -> int:
    """Bytes of the files under `path` (symbolic links not followed)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _exports_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p / workspace.EXPORT_MARKER).is_file())


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def models() -> list[ModelEntry]:
    """Every model the workspace knows: trained here, unfinished trainings, pulled, and folders."""
    out: list[ModelEntry] = []
    root = workspace.home() / workspace.MODELS
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if not folder.is_dir():
            continue
        if folder.name.startswith("."):
            if folder.name.endswith(".training") and (folder / workspace.TRAINING_MARKER).is_file():
                signature = _json(folder / workspace.TRAINING_MARKER)
                steps = sorted(int(p.name.split("-")[1]) for p in folder.glob("checkpoint-*") if p.name[11:].isdigit())
                out.append(
                    ModelEntry(
                        folder.name[1 : -len(".training")],
                        "training",
                        str(folder),
                        size(folder),
                        detail={"checkpoints": steps, "corpus": signature.get("corpus")},
                    )
                )
            continue
        trained = (folder / workspace.TRAINED_MARKER).is_file()
        metrics = _json(folder / workspace.TRAINED_MARKER) if trained else {}
        ppl = metrics.get("val_perplexity")
        out.append(
            _with_arch(
                ModelEntry(
                    folder.name,
                    "trained" if trained else "folder",
                    str(folder),
                    size(folder),
                    ppl if isinstance(ppl, (int, float)) and not isinstance(ppl, bool) else None,
                    exports=[str(p) for p in _exports_in(folder)],
                ),
                _folder_arch(folder),
            )
        )
    pulled_dir = workspace.home() / workspace.PULLED
    for record in sorted(pulled_dir.glob("*.json")) if pulled_dir.is_dir() else []:
        try:
            pulled = pretrained.registered(record.stem)
        except LtsError as exc:  # listed as what it is: `lts cache check --repair` removes it
            out.append(ModelEntry(record.stem, "pulled", str(record), 0, detail={"problem": str(exc)}))
            continue
        if pulled is None:
            continue
        detail = {k: v for k, v in pretrained.describe(pulled).items() if k not in ("id", "path", "arch", "size_bytes")}
        out.append(
            _with_arch(
                ModelEntry(
                    pulled.id,
                    "pulled",
                    pulled.path,
                    pretrained.size_on_disk(pulled),
                    exports=[str(p) for p in _exports_in(workspace.home() / workspace.EXPORTS / pulled.id)],
                    detail={"published_as": pulled.id, **detail},
                ),
                pulled.architecture(_gallery_entry(pulled.id)),
            )
        )
    return out


def _with_arch(entry: ModelEntry, arch: Arch | None) -> ModelEntry:
    if arch is not None:
        entry.arch, entry.config = arch.to_dict(), arch.hf_fields()
        entry.non_embedding_params = arch.non_embedding_params
    return entry


def _folder_arch(folder: Path) -> Arch | None:
    """A model folder's architecture (arch.json, else a GPT-2 config.json); None if it has none or it is unreadable."""
    from lts_cli.gallery import arch_from_file

    try:
        return arch_from_file(folder)
    except LtsError:
        return None


def _gallery_entry(model_id: str) -> Any:
    from lts_cli.gallery import entries

    return next((e for e in entries() if e.id == model_id), None)


def find_model(ref: str, source: str | None = None) -> ModelEntry:
    """The one model `ref` names (an id or unique prefix), `source` to choose between namesakes."""
    if source is not None and source not in SOURCES:
        raise UsageError(f"--source must be one of {', '.join(SOURCES)}, got {source!r}")
    known = [m for m in models() if source is None or m.source == source]
    name = unique(ref, (m.id for m in known), "models")
    if name is None:
        names = ", ".join(sorted({m.id[:20] for m in known})[:5]) or "none"
        raise NotFound(
            f"no model {ref!r} in the workspace (a name, or gpt2_ and at least 4 hex digits of an id; "
            f"models: {names}); see `lts models list`"
        )
    matches = [m for m in known if m.id == name]
    if len(matches) > 1:
        which = ", ".join(f"{m.id} ({m.source})" for m in matches[:4])
        raise LtsError(f"{ref!r} names {len(matches)} models: {which}; choose one with --source")
    return matches[0]


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

    def lines(self) -> list[str]:
        """One line per folder or file removed, with counts and sizes, then the files kept."""
        out = []
        for plan in self.folders:
            out.append(f"{plan.folder}: {len(plan.files)} file(s), {_mib(plan.size_bytes())}")
            out += [f"  with the export {nested}" for nested in plan.nested]
        for path in self.files:
            out.append(f"{path}" + (f" ({_mib(path.lstat().st_size)})" if path.exists() and not path.is_dir() else ""))
        out += [f"keeps {path} (not written by lts)" for path in self.kept()]
        return out


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


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


# ---- caches -------------------------------------------------------------------------------------


def report() -> dict[str, Any]:
    """Sizes of what lts keeps besides models and runs, and what `prune` would remove."""
    home = workspace.home()
    db = home / workspace.DB_NAME
    measurements = 0
    if db.is_file():
        from lts_cli.store import Store

        with Store(db) as store:
            measurements = store.count_measurements()
    tokens = _token_caches()
    exports = _all_exports()
    leftovers = _leftovers()
    return {
        "workspace": str(home),
        "measurements": {
            "count": measurements,
            "size_bytes": sum(size(p) for p in home.glob(workspace.DB_NAME + "*") if p.is_file()),
        },
        "token_caches": tokens,
        "exports": exports,
        "leftovers": leftovers,
        "prunable": [t["path"] for t in tokens if not t["in_use"]]
        + [e["path"] for e in exports if not e["referenced"]]
        + [item["path"] for item in leftovers if item["stale"]],
    }


def prune(on_note: folders.OnNote | None = None) -> list[str]:
    """Remove token caches no unfinished training needs, exports whose model is gone, and stale
    leftovers of interrupted writes (files a user added to them stay, and are named); what was removed."""
    removed = []
    for path in map(Path, report()["prunable"]):
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


def _token_caches() -> list[dict[str, Any]]:
    root = workspace.home() / workspace.TOKENS
    needed = {
        _json(work / workspace.TRAINING_MARKER).get("corpus")
        for work in (workspace.home() / workspace.MODELS).glob(".*.training")
    }
    out = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        meta = _json(folder / workspace.TOKENS_MARKER)
        if not meta:
            continue
        out.append(
            {
                "path": str(folder),
                "corpus": meta.get("corpus"),
                "tokens": sum(meta.get("tokens", {}).values()),
                "size_bytes": size(folder),
                "in_use": meta.get("key") in needed,
            }
        )
    return out


def _all_exports() -> list[dict[str, Any]]:
    home = workspace.home()
    out = []
    for model in sorted((home / workspace.MODELS).iterdir()) if (home / workspace.MODELS).is_dir() else []:
        for export in _exports_in(model):
            out.append(_export_row(export, referenced=True))  # beside its model: goes with it
    for folder in sorted((home / workspace.EXPORTS).iterdir()) if (home / workspace.EXPORTS).is_dir() else []:
        for export in _exports_in(folder):
            info = _json(export / workspace.EXPORT_MARKER)
            kind = info.get("source_kind")
            referenced = kind != "pulled" or pretrained.registered(folder.name) is not None
            out.append(_export_row(export, referenced, info))
    return out


def _export_row(export: Path, referenced: bool, info: dict[str, Any] | None = None) -> dict[str, Any]:
    info = info if info is not None else _json(export / workspace.EXPORT_MARKER)
    return {
        "path": str(export),
        "source": info.get("source"),
        "dtype": info.get("dtype"),
        "size_bytes": size(export),
        "referenced": referenced,
    }


def _leftovers() -> list[dict[str, Any]]:
    """Temporary and replaced folders of atomic writes (`.NAME.tmp-*`, `.NAME.old-*`)."""
    home = workspace.home()
    out = []
    now = time.time()
    for parent in (
        home / workspace.MODELS,
        home / workspace.RUNS,
        home / workspace.EXPORTS,
        *(home / workspace.EXPORTS).glob("*"),
    ):
        if not parent.is_dir():
            continue
        for path in parent.iterdir():
            if path.name.startswith(".") and (".tmp-" in path.name or ".old-" in path.name):
                age = now - path.stat().st_mtime
                out.append({"path": str(path), "size_bytes": size(path), "stale": age > LEFTOVER_AGE_S})
    return out


# ---- damaged records ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    what: str  # a cached measurement's row, or a file
    where: str  # the row's key and architecture, or the file's path
    problem: str
    repair: str  # what --repair does about it


def check(repair: bool = False) -> list[Problem]:
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
    return found
