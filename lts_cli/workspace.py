"""The workspace: its root (`$LTS_HOME`, else the platform's user data folder), the names of its
folders and marker files, and atomic file writes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lts_cli.errors import LtsError, UsageError

ENV_HOME = "LTS_HOME"
DB_NAME = "lts.db"
# The workspace's folders, named once.
MODELS = "models"  # trained models (and unfinished trainings, hidden)
EXPORTS = "exports"  # exports of models that do not live in models/ (pulled, Hub, untrained)
PULLED = "pulled"  # one record per pre-trained gallery model pulled from the Hub
RUNS = "runs"  # search runs
TOKENS = "tokens"  # tokenized corpora
PROXY = "proxy"  # lts proxy: results, models in training, reports
PREDICTOR = "predictor"  # latency model plots
ARCH_FILE = "arch.json"  # the architecture that made a model or export folder
# The files that mark a folder as lts's own, so lts may replace or remove it.
TRAINED_MARKER = "metrics.json"  # a model trained here (written last)
TRAINING_MARKER = "train.json"  # an unfinished training's work folder
TRAINING_PLAN = "plan.json"  # how an unfinished training runs here (train_plan.Plan)
EXPORT_MARKER = "export.json"  # an `lts export` folder
RUN_MARKER = "config.yaml"  # a search run (the effective config, written first)
TOKENS_MARKER = "meta.json"  # a complete token cache (written last)


def home() -> Path:
    """Where lts keeps its database, search runs and models (not created here)."""
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return platformdirs.user_data_path("lts", appauthor=False)


def ensure_home() -> Path:
    """The workspace root, created and checked writable, or an error that says how to fix it."""
    root = home()
    if root.exists() and not root.is_dir():
        raise LtsError(f"the workspace {root} is a file, not a folder; set {ENV_HOME} to a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-check-"):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise LtsError(f"cannot write to the workspace {root} ({reason}); set {ENV_HOME} to a writable folder") from exc
    return root


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_name(name: str, flag: str = "--name") -> None:
    """A run or model name is one plain folder name (no paths, nothing hidden)."""
    if not _NAME.match(name):
        raise UsageError(f"{flag} {name!r}: use letters, digits, '.', '_' or '-' (up to 100 characters, not first)")


def db_path() -> Path:
    return ensure_home() / DB_NAME


def runs_dir() -> Path:
    return ensure_home() / RUNS


def models_dir() -> Path:
    return ensure_home() / MODELS


def exports_dir() -> Path:
    """Exports of models that do not live in the workspace (pulled, Hub, untrained architectures)."""
    return ensure_home() / EXPORTS


def pulled_record(model_id: str) -> Path:
    """The workspace's record of a pre-trained gallery model pulled from the Hub."""
    return home() / PULLED / f"{model_id}.json"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


# ---- what running commands use --------------------------------------------------------------------

LOCKS = ".locks"  # one lock file per folder in use, named after the folder's path


def _lock_file(path: Path) -> Path:
    import hashlib

    folder = home() / LOCKS
    folder.mkdir(parents=True, exist_ok=True)
    return folder / (hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:20] + ".lock")


@contextmanager
def in_use(*paths: Path) -> Iterator[None]:
    """Hold a shared lock on each of `paths` while the block runs: what a running command reads or
    writes (token caches, training folders, exports, run folders) is then `busy` for the others. The
    kernel releases the locks of a killed process."""
    import fcntl

    held = []
    try:
        for path in paths:
            f = _lock_file(path).open("a")
            fcntl.flock(f, fcntl.LOCK_SH)
            held.append(f)
        yield
    finally:
        for f in held:
            f.close()  # closing releases the lock


@contextmanager
def one_at_a_time(path: Path) -> Iterator[None]:
    """An exclusive lock for filling `path` (a cache several processes may fill at once): the others
    wait, then find it filled. Independent of `in_use`'s shared lock on the same path."""
    import fcntl

    with _lock_file(path.with_name(path.name + ".filling")).open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def busy(path: Path) -> bool:
    """Whether a running lts command uses `path` (holds a lock on it)."""
    import fcntl

    if not (home() / LOCKS).is_dir():
        return False
    with _lock_file(path).open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
    return False
