"""The gallery's pre-trained models on the Hugging Face Hub: pull one into the Hub's own cache, check it
is the architecture it claims to be, and register it in the workspace.

The 20 models were published as one repository (`microsoft/lts-gpt2-sm`) with a subfolder per
archid and, possibly, tokenizer files at the root. A pull keeps the files where huggingface_hub
puts them (shared with every other tool that uses the Hub) and writes `pulled/<id>.json` in the
workspace: the repository, the commit, the subfolder and which tokenizer goes with it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lts_cli import workspace
from lts_cli.errors import LtsError, NotFound
from lts_cli.gallery import GalleryEntry
from lts_cli.space import Arch

REPO = "microsoft/lts-gpt2-sm"
ENV_REPO = "LTS_GALLERY_REPO"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json")
# config.json (transformers' GPT2Config) key -> Arch field; n_inner null means 4 x n_embd.
CONFIG_FIELDS = {
    "n_layer": "n_layer",
    "n_embd": "d_model",
    "n_inner": "d_inner",
    "n_head": "n_head",
    "vocab_size": "vocab_size",
    "n_positions": "n_positions",
}

OnNote = Callable[[str], None]


@dataclass
class Pulled:
    """A pre-trained gallery model in the Hub cache, as registered in the workspace."""

    id: str
    repo: str
    revision: str  # the commit the files came from
    path: str  # the snapshot's subfolder with config.json and the weights
    weights: str
    tokenizer: str  # "repository": tokenizer files at the repository root; "shipped": lts's GPT-2 tokenizer
    tokenizer_path: str | None
    pulled_at: str

    def folder(self) -> Path:
        return Path(self.path)


def default_repo() -> str:
    return os.environ.get(ENV_REPO) or REPO


def record_path(model_id: str) -> Path:
    return workspace.home() / "pulled" / f"{model_id}.json"


def registered(model_id: str) -> Pulled | None:
    """The workspace's record of a pulled model, or None (a damaged record is an error naming it)."""
    path = record_path(model_id)
    if not path.is_file():
        return None
    try:
        return Pulled(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise LtsError(f"{path} is damaged ({exc}); `lts gallery pull {model_id}` registers the model again") from exc


def present(pulled: Pulled) -> bool:
    """Whether the Hub cache still holds a pulled model's files."""
    return _complete(pulled.folder())


def pull(
    entry: GalleryEntry,
    repo: str | None = None,
    revision: str | None = None,
    on_note: OnNote | None = None,
    alternatives: str = "",
) -> Pulled:
    """The model of `entry`: from the Hub cache if it is there, else downloaded (with huggingface_hub's
    progress bars on stderr); checked against the gallery architecture; registered in the workspace.
    `alternatives`: what else the user could do, for the message when the Hub is out of reach."""
    from lts_cli.hub import HubUnavailable, check_repo, offline

    repo = repo or default_repo()
    patterns = [f"{entry.id}/*", *TOKENIZER_FILES]
    snapshot = _snapshot(repo, revision, patterns, local_only=True)
    if snapshot is None or not _complete(snapshot / entry.id):
        why = f"{entry.id} is not downloaded (not in the Hugging Face cache {_hub_cache()})"
        ways = f"run `lts gallery pull {entry.id}` when online, or train it here with `lts train {entry.id}`"
        ways += f", {alternatives}" if alternatives else ""
        if offline():
            raise LtsError(f"{why} and HF_HUB_OFFLINE is set: {ways}")
        try:
            check_repo(repo, revision=revision)
        except HubUnavailable as exc:
            raise LtsError(f"{why} and {exc}: {ways}") from exc
        if on_note:
            on_note(f"downloading {entry.id} from {repo} into the Hugging Face cache")
        snapshot = _snapshot(repo, revision, patterns, local_only=False)
        assert snapshot is not None
    folder = snapshot / entry.id
    if not (folder / "config.json").is_file():
        raise NotFound(f"{repo} has no subfolder {entry.id} with a config.json (revision {snapshot.name[:12]})")
    weights = next((name for name in WEIGHT_FILES if (folder / name).is_file()), None)
    if weights is None:
        raise LtsError(f"{repo}/{entry.id} has no weights ({' or '.join(WEIGHT_FILES)})")
    check_config(folder / "config.json", entry.arch, f"{repo}/{entry.id}")
    root_tokenizer = any((snapshot / name).is_file() for name in ("tokenizer.json", "vocab.json"))
    pulled = Pulled(
        id=entry.id,
        repo=repo,
        revision=snapshot.name,
        path=str(folder),
        weights=weights,
        tokenizer="repository" if root_tokenizer else "shipped",
        tokenizer_path=str(snapshot) if root_tokenizer else None,
        pulled_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    workspace.atomic_write_json(record_path(entry.id), asdict(pulled))
    return pulled


def check_config(path: Path, arch: Arch, label: str) -> None:
    """Refuse a config.json that is not `arch`, naming the first field that differs."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LtsError(f"{label}: config.json cannot be read ({exc})") from exc
    if config.get("model_type") != "gpt2":
        raise LtsError(f"{label}: config.json is a {config.get('model_type')!r} model, not a GPT-2")
    for key, field in CONFIG_FIELDS.items():
        value = config.get(key)
        if key == "n_inner" and value is None:
            value = 4 * config.get("n_embd", 0)
        expected = getattr(arch, field)
        if value != expected:
            raise LtsError(
                f"{label}: config.json has {key} {value}, but the gallery architecture has {field} {expected}; "
                "this is not the published model of that id"
            )


def _complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any((folder / name).is_file() for name in WEIGHT_FILES)


def _hub_cache() -> Path:
    """Where huggingface_hub keeps downloads (HF_HUB_CACHE, HF_HOME/hub, or its default), read now."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path(constants.HF_HUB_CACHE)


def _snapshot(repo: str, revision: str | None, patterns: list[str], local_only: bool) -> Path | None:
    """The snapshot folder huggingface_hub resolves for `repo` at `revision` (None: not cached)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = snapshot_download(
            repo, revision=revision, allow_patterns=patterns, cache_dir=_hub_cache(), local_files_only=local_only
        )
    except LocalEntryNotFoundError:
        if local_only:
            return None
        raise
    except Exception as exc:  # the Hub client's errors: HTTP, repository or revision not found
        raise LtsError(f"could not download from {repo}: {type(exc).__name__}: {exc}") from exc
    return Path(str(path))


def hub_files(pulled: Pulled) -> list[Path]:
    """The files of a pulled model in the Hub cache: the subfolder's symlinks and the blobs they point to."""
    folder = pulled.folder()
    if not folder.is_dir():
        return []
    links = [p for p in folder.rglob("*") if p.is_file() or p.is_symlink()]
    return links + [p.resolve() for p in links if p.is_symlink()]


def size_on_disk(pulled: Pulled) -> int:
    return sum(p.stat().st_size for p in hub_files(pulled) if p.is_file() and not p.is_symlink())


def describe(pulled: Pulled) -> dict[str, Any]:
    return {**asdict(pulled), "present": _complete(pulled.folder()), "size_bytes": size_on_disk(pulled)}
