"""Folders lts makes: written beside their place and moved there in one rename, with a manifest of
the files lts wrote in them, so that replacing or removing one deletes exactly those files.

Every folder lts makes (model, export, run, training and token folders) records what it wrote in
`.lts-manifest.json`. Removing or replacing it deletes the files listed there, and the lts folders
nested in it (a model's exports), and nothing else: a file a user put there is kept, and reported
("kept notes.txt (not written by lts)"), and the folder stays around it. Folders made before manifests
existed are recognised by their marker file and fall back to the names lts is known to write there.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lts_cli import workspace
from lts_cli.errors import LtsError

MANIFEST = ".lts-manifest.json"
TOKENIZER_NAMES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt")
MODEL_NAMES = ("config.json", "generation_config.json", "model.safetensors", "README.md", workspace.ARCH_FILE)
ATOMIC_LEFTOVERS = ".*.tmp"  # a temporary file of an atomic write cut short
# What lts writes in each kind of folder, by the marker that names the kind: for folders made before
# manifests existed (glob patterns, relative to the folder).
KNOWN: dict[str, tuple[str, ...]] = {
    workspace.TRAINED_MARKER: (*MODEL_NAMES, *TOKENIZER_NAMES, "train_config.yaml", workspace.TRAINED_MARKER),
    workspace.EXPORT_MARKER: (*MODEL_NAMES, *TOKENIZER_NAMES, "model.onnx", "optimized.onnx", workspace.EXPORT_MARKER),
    workspace.RUN_MARKER: ("config.yaml", "state.json", "results.csv", "screened.csv", "summary.json", "*.png",
                           "pareto/*.json", "ray.log"),
    workspace.TRAINING_MARKER: (workspace.TRAINING_MARKER, workspace.TRAINING_PLAN, "initial.json", "checkpoint-*/*",
                                "checkpoint-*/**/*"),
    workspace.TOKENS_MARKER: (workspace.TOKENS_MARKER, "*.bin", "*.npy"),
}  # fmt: skip
OnNote = Callable[[str], None]


def write_manifest(folder: Path, files: Iterable[str] | None = None) -> None:
    """Record `files` (paths relative to `folder`; default: every file in it now, outside nested lts
    folders) as written by lts, with what the manifest held already."""
    names = set(read_manifest(folder) or ()) | set(files if files is not None else _all_files(folder))
    names.discard(MANIFEST)
    workspace.atomic_write_json(folder / MANIFEST, {"files": sorted(names)})


def record_written(folder: Path, *names: str) -> None:
    """Add files lts has just written into `folder` to its manifest (no-op when they are listed)."""
    known = set(read_manifest(folder) or ())
    if not set(names) <= known:
        write_manifest(folder, known | set(names))


def read_manifest(folder: Path) -> list[str] | None:
    """The files the manifest lists, or None when there is none (or it is damaged: then lts falls back
    to the names it knows it writes, and keeps everything else)."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return files


def is_lts_folder(folder: Path) -> bool:
    """A folder lts made inside another: it has a manifest, or (made before manifests) is an export."""
    return folder.is_dir() and ((folder / MANIFEST).is_file() or (folder / workspace.EXPORT_MARKER).is_file())


@dataclass
class Removal:
    """What removing an lts folder deletes (`files`), and the files in it lts did not write (`kept`)."""

    folder: Path
    files: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    nested: list[Path] = field(default_factory=list)  # lts folders inside it (removed with it)

    def size_bytes(self) -> int:
        return sum(p.lstat().st_size for p in self.files if p.exists() or p.is_symlink())

    def __add__(self, other: Removal) -> Removal:
        return Removal(self.folder, self.files + other.files, self.kept + other.kept, self.nested + other.nested)


def removal_plan(folder: Path) -> Removal:
    """The files of `folder` lts wrote (its manifest, else the known names of its kind), those of the
    lts folders nested in it, and the rest, which is kept."""
    plan = Removal(folder)
    if not folder.is_dir():
        return plan
    listed = read_manifest(folder)
    patterns = _known_patterns(folder) if listed is None else ()
    mine = set(listed or ()) | {MANIFEST}
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and not entry.is_symlink() and is_lts_folder(entry) and entry.name not in mine:
            plan = plan + removal_plan(entry)
            plan.nested.append(entry)
            continue
        for path in [entry] if not entry.is_dir() or entry.is_symlink() else sorted(entry.rglob("*")):
            if path.is_dir() and not path.is_symlink():
                continue
            name = str(path.relative_to(folder))
            ours = name in mine or any(fnmatch.fnmatch(name, p) for p in (*patterns, ATOMIC_LEFTOVERS))
            (plan.files if ours else plan.kept).append(path)
    return plan


def remove(plan: Removal, on_note: OnNote | None = None) -> list[Path]:
    """Delete the planned files, then the folders they leave empty; say which files were kept."""
    for path in plan.files:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    for path in sorted({p.parent for p in plan.files} | set(plan.nested) | {plan.folder}, key=lambda p: -len(p.parts)):
        _remove_empty(path, plan.folder)
    if on_note is not None:
        for path in plan.kept:
            on_note(f"kept {path.relative_to(plan.folder)} in {plan.folder} (not written by lts)")
    return plan.kept


def remove_folder(folder: Path, on_note: OnNote | None = None) -> Removal:
    """Remove what lts wrote in `folder` (see `removal_plan`); the folder stays if anything is kept."""
    plan = removal_plan(folder)
    remove(plan, on_note)
    return plan


def _remove_empty(path: Path, root: Path) -> None:
    """rmdir `path` and its empty parents up to `root` (inclusive); stop at the first non-empty one."""
    while path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        path.rmdir()
        if path == root or root not in path.parents:
            return
        path = path.parent


def _known_patterns(folder: Path) -> tuple[str, ...]:
    return tuple(p for marker, names in KNOWN.items() if (folder / marker).is_file() for p in names)


def _all_files(folder: Path) -> list[str]:
    """Every file under `folder` (relative), outside nested lts folders."""
    out = []
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            if not is_lts_folder(entry):
                out += [str(p.relative_to(folder)) for p in entry.rglob("*") if not p.is_dir()]
        else:
            out.append(entry.name)
    return out


# ---- writing a folder in one move ------------------------------------------------------------


def check_replaceable(target: Path, marker: str | None, what: str, force: bool = False) -> None:
    """Refuse, before any work, to write `what` to `target` unless it is new, an empty folder, or
    (with `force`) an earlier `what` that lts made, recognised by its `marker` file. lts never
    replaces a folder it cannot prove it created."""
    if not target.exists():
        return
    if not target.is_dir():
        raise LtsError(f"{target} is a file; choose another output folder")
    if not any(target.iterdir()):
        return
    if marker is None or not (target / marker).is_file():
        raise LtsError(
            f"{target} exists and is not {what} (it has no {marker or 'lts marker'}); nothing was touched; "
            "choose another output folder, or move it away"
        )
    if not force:
        raise LtsError(f"{target} holds {what} already; add --force to replace it, or choose another output folder")


@contextmanager
def staged_folder(target: Path, marker: str | None = None, on_note: OnNote | None = None) -> Iterator[Path]:
    """A temporary folder beside `target` to fill; when the block succeeds, its files are recorded in
    its manifest and it replaces `target` in one rename (so nothing half-written ever looks
    complete); when it fails it is removed. An existing `target` is replaced only if it is an empty
    folder or holds `marker` (an earlier folder lts made); then lts's files of the old one are
    deleted and any other file in it is moved into the new one and reported."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        yield tmp
        write_manifest(tmp)
        usual_permissions(tmp)
        old = None
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        elif target.exists():
            if marker is None or not (target / marker).is_file():
                raise LtsError(f"{target} appeared while lts was writing it and is not lts's; nothing was touched")
            old = target.parent / f".{target.name}.old-{os.getpid()}-{int(time.time())}"
            target.rename(old)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # made by this call: all of it is lts's
        raise
    if old is not None:
        _carry_over(old, target, on_note)


def _carry_over(old: Path, new: Path, on_note: OnNote | None) -> None:
    """Move the files lts did not write from the replaced folder into the new one, delete the rest."""
    plan = removal_plan(old)
    for path in plan.kept:
        relative = path.relative_to(old)
        destination = new / relative
        if destination.exists():
            if on_note:
                on_note(f"kept {relative} (not written by lts) in {old}: the new {new.name} has a file of that name")
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        path.rename(destination)
        if on_note:
            on_note(f"kept {relative} in {new} (not written by lts)")
    if plan.nested and on_note:
        names = ", ".join(p.name for p in plan.nested)
        on_note(f"removed {len(plan.nested)} lts folder(s) made from the replaced one: {names}")
    remove(Removal(old, plan.files, [], plan.nested))
    for parent in sorted({p.parent for p in plan.kept}, key=lambda p: -len(p.parts)):
        _remove_empty(parent, old)  # the folders the moved files left empty


def usual_permissions(folder: Path) -> None:
    """mkdtemp/mkstemp make private 0700/0600 entries; give a finished folder the umask's permissions."""
    mask = workspace.umask()
    folder.chmod(0o777 & ~mask)
    for entry in folder.rglob("*"):
        entry.chmod((0o777 if entry.is_dir() else 0o666) & ~mask)
