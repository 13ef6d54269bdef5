"""Training checkpoints: marked complete once the Trainer has written them, checked by their contents
before a training resumes from one, and the newest good one chosen.

A checkpoint is complete when its `lts-checkpoint.json` (written once the Trainer has finished
saving it) lists every file of the folder with its size and the files on disk match. Its contents
must also read: the weights' safetensors header describes exactly the model being trained (names,
shapes, and a file of the size it says), `trainer_state.json` parses, and every torch file (optimizer,
scheduler, random state) passes its zip archive's CRC check. A checkpoint that fails any of these is
skipped with the reason, and the one before it is used.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

from lts_cli import weights, workspace
from lts_cli.errors import ConfigError, LtsError
from lts_cli.space import Arch
from lts_cli.views import JsonObject

CHECKPOINT_RECORD = "lts-checkpoint.json"
SIGNATURE_FILE = workspace.TRAINING_MARKER  # the settings of an unfinished training, in its work folder


def resume_point(
    work: Path, signature: JsonObject, arch: Arch, rank: int
) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest good checkpoint of an interrupted run of the same command (None: a fresh start),
    and the newer ones that are not, with what is wrong with them. Process 0 removes those: the
    Trainer writes the same step's checkpoint again, into a clean folder."""
    record = work / SIGNATURE_FILE
    if record.is_file():
        previous = json.loads(record.read_text())
        if previous != signature:
            changed = sorted(k for k in signature if previous.get(k) != signature[k])
            if "train" in changed:
                before, now = previous["train"], signature["train"]
                changed = [f"train.{k}" for k in now if before.get(k) != now[k]] + [c for c in changed if c != "train"]
            raise ConfigError(
                ["restart"],
                f"an interrupted training in {work} used other settings ({', '.join(changed)}); "
                "re-run it unchanged to resume, or add {0} to discard it",
            )
    elif rank == 0:
        workspace.atomic_write_json(record, signature)
    found = [p for p in work.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[1].isdigit()]
    skipped: list[tuple[Path, str]] = []
    for folder in sorted(found, key=lambda p: int(p.name.split("-")[1]), reverse=True):
        problem = checkpoint_problem(folder, arch)
        if problem is None:
            return folder, skipped
        skipped.append((folder, problem))
        if rank == 0:
            shutil.rmtree(folder, ignore_errors=True)  # a Trainer checkpoint: lts wrote all of it
    return None, skipped


def checkpoint_problem(folder: Path, arch: Arch | None = None) -> str | None:
    """Why a Trainer checkpoint cannot be resumed from, or None when it is complete and reads (see the
    module doc); `arch`: the model its weights must fill."""
    try:
        problem = _completeness(folder)
        if problem is None:
            problem = _contents(folder, arch)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return problem


def _completeness(folder: Path) -> str | None:
    record = folder / CHECKPOINT_RECORD
    if not any(folder.iterdir()):
        return "empty"
    if not record.is_file():
        return f"interrupted while saving (no {CHECKPOINT_RECORD})"
    try:
        files = json.loads(record.read_text())["files"]
        expected = {str(name): int(size) for name, size in files.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return f"{CHECKPOINT_RECORD} is damaged"
    for name, size in expected.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} is truncated ({path.stat().st_size:,} of {size:,} bytes)"
    return None


def _contents(folder: Path, arch: Arch | None) -> str | None:
    weight_file = folder / weights.SAFETENSORS
    if weight_file.is_file():
        try:
            if arch is not None:
                weights.check_gpt2(weight_file, arch)
            else:
                weights.read_shapes(weight_file)
        except LtsError as exc:
            return f"{weights.SAFETENSORS} does not read: {str(exc).replace(str(folder) + '/', '')}"
    state = folder / "trainer_state.json"
    if state.is_file():
        try:
            if not isinstance(json.loads(state.read_text()), dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            return f"trainer_state.json does not read ({exc})"
    for path in sorted(folder.glob("*.pt")) + sorted(folder.glob("*.pth")) + sorted(folder.glob("*.bin")):
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except zipfile.BadZipFile:
            return f"{path.name} is not a torch file (no zip archive)"
        if bad is not None:
            return f"{path.name} is damaged ({bad} fails its CRC check)"
    return None


def record_checkpoint(folder: Path) -> None:
    """Mark a checkpoint the Trainer has finished writing as complete: every file and its size."""
    files = {
        str(p.relative_to(folder)): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != CHECKPOINT_RECORD
    }
    workspace.atomic_write_json(folder / CHECKPOINT_RECORD, {"files": files})
