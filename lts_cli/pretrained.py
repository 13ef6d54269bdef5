"""The gallery's pre-trained models on the Hugging Face Hub: pull one into the Hub's own cache, check
that its weights fill the architecture its own config.json describes, and register it in the workspace.

The 20 models were published as one repository (`microsoft/lts-gpt2-sm`) with a subfolder per
archid (`config.json` and a pickled `pytorch_model.bin`) and the tokenizer files at the root. The
checkpoints are not the gallery table's widths: they have GPT-2-small widths (n_embd 768, n_inner
3072, 12 heads) with the searched layer count. A pulled model is what its config says; where that
differs from the gallery table, the pull says so once and the record keeps both.

A pull keeps the files where huggingface_hub puts them (shared with every other tool that uses the
Hub) and writes `pulled/<id>.json` in the workspace: the repository, the commit, the subfolder, the
architecture, and which tokenizer goes with it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lts_cli import hub, weights, workspace
from lts_cli.config import from_mapping
from lts_cli.errors import LtsError, NotFound
from lts_cli.gallery import GalleryEntry
from lts_cli.space import ARCH_FIELDS, Arch
from lts_cli.tokenizer import TOKENIZER_FILES, load_tokenizer
from lts_cli.views import Block, JsonObject, Lines, Note, Pairs

REPO = "microsoft/lts-gpt2-sm"
ENV_REPO = "LTS_GALLERY_REPO"
SPACE_MARGIN = 1.05  # refuse a download unless the disk has 5% more room than the files need

OnNote = Callable[[str], None]


@dataclass
class Pulled:
    """A pre-trained gallery model in the Hub cache, as registered in the workspace."""

    id: str
    repo: str
    revision: str  # the commit the files came from
    path: str  # the snapshot's subfolder with config.json and the weights
    weights: str
    tokenizer: str  # how its tokenizer is made (see modeling.load_tokenizer)
    tokenizer_path: str | None  # the repository root with tokenizer files, or None: lts's own
    pulled_at: str
    arch: dict[str, int] = field(default_factory=dict)  # what config.json describes (Arch fields)
    differences: str | None = None  # how that differs from the gallery table's architecture

    def folder(self) -> Path:
        return Path(self.path)

    def architecture(self, entry: GalleryEntry | None = None) -> Arch:
        """The checkpoint's architecture (records from before it was kept: the gallery table's)."""
        if self.arch:
            return Arch(**self.arch)
        if entry is None:
            raise LtsError(
                f"{workspace.pulled_record(self.id)} has no architecture; `lts gallery pull {self.id}` again"
            )
        return entry.arch


@dataclass
class PullResult:
    pulled: list[Pulled]
    planned: list[hub.PlannedFile]  # what was (or, with dry_run, would be) downloaded; [] if all was cached
    download_bytes: int | None  # None: the Hub could not say
    free_bytes: int
    cache: str
    dry_run: bool

    def to_dict(self) -> JsonObject | list[JsonObject]:
        if not self.dry_run:
            return [describe(p) for p in self.pulled]
        files = [{"path": f.path, "size_bytes": f.size, "cached": f.cached} for f in self.planned]
        return {"files": files, "download_bytes": self.download_bytes, "free_bytes": self.free_bytes,
                "cache": self.cache}  # fmt: skip

    def view(self) -> list[Block]:
        if self.dry_run:
            return self._plan()
        blocks: list[Block] = []
        for p in self.pulled:
            shape = ", ".join(f"{k} {v}" for k, v in p.architecture().hf_fields().items() if k[0] == "n")
            blocks.append(Pairs([("checkpoint", f"{p.repo}@{p.revision[:12]} ({p.weights}; {shape})"),
                                 ("path", p.path), ("tokenizer", p.tokenizer)], p.id))  # fmt: skip
        if len(self.pulled) == 1:
            first = self.pulled[0].id
            blocks.append(Note(f'try `lts generate {first} "ROMEO:"` or `lts export {first} --quantize int8`'))
        return blocks

    def _plan(self) -> list[Block]:
        if not self.planned:
            return [Note("everything asked for is in the Hugging Face cache already: nothing to download")]
        lines = []
        for f in self.planned:  # megabytes as the Hub shows them (10^6 bytes)
            size = f"{f.size / 1e6:,.1f} MB" if f.size is not None else "size unknown"
            lines.append(f"{f.path}  {size}{'  (cached)' if f.cached else ''}")
        total = f"{self.download_bytes / 1e6:,.1f} MB" if self.download_bytes is not None else "an unknown size"
        return [Lines(lines), Note(f"would download {total} into {self.cache} ({self.free_bytes / 1e9:,.1f} GB free)")]


def default_repo() -> str:
    return os.environ.get(ENV_REPO) or REPO


def registered(model_id: str) -> Pulled | None:
    """The workspace's record of a pulled model, or None (a damaged record is an error naming it)."""
    path = workspace.pulled_record(model_id)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return from_mapping(Pulled, data, str(path))
    except (OSError, ValueError, LtsError) as exc:
        raise LtsError(f"{path} is damaged ({exc}); `lts gallery pull {model_id}` registers the model again") from exc


def present(pulled: Pulled) -> bool:
    """Whether the Hub cache still holds a pulled model's files."""
    return _complete(pulled.folder())


def _patterns(entries: Sequence[GalleryEntry]) -> list[str]:
    return [*(f"{e.id}/*" for e in entries), *TOKENIZER_FILES]


def pull(
    entries: Sequence[GalleryEntry],
    repo: str | None = None,
    revision: str | None = None,
    dry_run: bool = False,
    on_note: OnNote | None = None,
    alternatives: str = "",
) -> PullResult:
    """The models of `entries`: from the Hub cache if they are there, else downloaded (with
    huggingface_hub's progress bars on stderr) once the Hub has said how big they are and the disk
    has room; each checked and registered. With `dry_run`, only what would be downloaded.
    `alternatives`: what else the user could do, for the message when the Hub is out of reach."""
    note = on_note or (lambda message: None)
    repo = repo or default_repo()
    cache = hub.cache_dir()
    snapshot = hub.snapshot(repo, revision, _patterns(entries), local_only=True)
    missing = [e for e in entries if snapshot is None or not _complete(snapshot / e.id)]
    planned: list[hub.PlannedFile] = []
    size: int | None = 0
    free = hub.free_bytes(cache)
    if missing:
        planned = _plan(repo, revision, missing, dry_run, alternatives)
        todo = [f for f in planned if not f.cached]
        size = None if any(f.size is None for f in todo) else sum(f.size or 0 for f in todo)
        if not dry_run:
            _check_room(size, free, cache)
            shown = f"{size / 1e9:.2f} GB" if size is not None else "an unknown size"
            note(
                f"downloading {len(todo)} file(s), {shown}, from {repo} into the Hugging Face cache {cache} "
                f"({free / 1e9:.1f} GB free)"
            )
            snapshot = hub.snapshot(repo, revision, _patterns(missing), local_only=False)
    if dry_run:
        return PullResult([], planned, size, free, str(cache), True)
    assert snapshot is not None
    done = [register(entry, repo, snapshot, note) for entry in entries]
    return PullResult(done, planned, size, free, str(cache), False)


def _plan(
    repo: str, revision: str | None, missing: list[GalleryEntry], dry_run: bool, alternatives: str
) -> list[hub.PlannedFile]:
    if len(missing) == 1:
        names = f"{missing[0].id} is"
    else:
        names = ", ".join(e.id[:9] for e in missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        names += " are"
    why = f"{names} not downloaded (not in the Hugging Face cache {hub.cache_dir()})"
    first = missing[0].id
    ways = f"run `lts gallery pull {first}` when online, or train it here with `lts train {first}`"
    ways += f", {alternatives}" if alternatives else ""
    if hub.offline() and not dry_run:
        raise LtsError(f"{why} and HF_HUB_OFFLINE is set: {ways}")
    try:
        return hub.plan(repo, revision, _patterns(missing))
    except hub.HubUnavailable as exc:
        if dry_run:
            raise LtsError(f"{why}; how much a download would fetch cannot be asked: {exc}") from exc
        raise LtsError(f"{why} and {exc}: {ways}") from exc


def _check_room(size: int | None, free: int, cache: Path) -> None:
    if size is not None and size * SPACE_MARGIN > free:
        raise LtsError(
            f"the download needs {size / 1e9:.2f} GB and {cache} has {free / 1e9:.2f} GB free; "
            "free some space, or set HF_HUB_CACHE to a larger disk"
        )


def register(entry: GalleryEntry, repo: str, snapshot: Path, on_note: OnNote) -> Pulled:
    """Check a downloaded subfolder (its weights fill the architecture its config.json describes)
    and record it; say once how that architecture differs from the gallery table's."""
    folder = snapshot / entry.id
    label = f"{repo}/{entry.id}"
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise NotFound(f"{repo} has no subfolder {entry.id} with a config.json (revision {snapshot.name[:12]})")
    arch = checkpoint_arch(config_path, label)
    weight_file = weights.weight_file(folder)
    if weight_file is None:
        raise LtsError(f"{label} has no weights ({' or '.join(weights.WEIGHT_FILES)})")
    weights.check_gpt2(weight_file, arch)
    root_files = [name for name in TOKENIZER_FILES if (snapshot / name).is_file()]
    _, how = load_tokenizer(snapshot if root_files else None, arch.vocab_size)
    differences = describe_differences(arch, entry.arch)
    if differences:
        on_note(f"{entry.id}: {differences}")
    pulled = Pulled(
        id=entry.id,
        repo=repo,
        revision=snapshot.name,
        path=str(folder),
        weights=weight_file.name,
        tokenizer=how,
        tokenizer_path=str(snapshot) if root_files else None,
        pulled_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        arch=arch.to_dict(),
        differences=differences,
    )
    workspace.atomic_write_json(workspace.pulled_record(entry.id), asdict(pulled))
    return pulled


def checkpoint_arch(config_path: Path, label: str) -> Arch:
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LtsError(f"{label}/config.json cannot be read ({exc})") from exc
    if not isinstance(config, dict):
        raise LtsError(f"{label}/config.json is not a JSON object")
    return Arch.from_hf_config(config, source=f"{label}/config.json")


def describe_differences(checkpoint: Arch, table: Arch) -> str | None:
    """'the published checkpoint is n_layer 4, n_embd 768, ...; the gallery table lists d_model 128, ...'
    (None when they agree)."""
    differ = [name for name in ARCH_FIELDS if getattr(checkpoint, name) != getattr(table, name)]
    if not differ:
        return None
    shape = ", ".join(
        f"{key} {value}" for key, value in checkpoint.hf_fields().items() if key not in ("vocab_size", "n_positions")
    )
    extra = ", ".join(
        f"{key} {value}"
        for key, value in checkpoint.hf_fields().items()
        if key in ("vocab_size", "n_positions") and getattr(checkpoint, key) != getattr(table, key)
    )
    listed = ", ".join(f"{name} {getattr(table, name)}" for name in differ)
    return f"the published checkpoint is {shape}{', ' + extra if extra else ''}; the gallery table lists {listed}"


def _complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and weights.weight_file(folder) is not None


def hub_files(pulled: Pulled) -> list[Path]:
    """The files of a pulled model in the Hub cache: the subfolder's symlinks and the blobs they point to."""
    folder = pulled.folder()
    if not folder.is_dir():
        return []
    links = [p for p in folder.rglob("*") if p.is_file() or p.is_symlink()]
    return links + [p.resolve() for p in links if p.is_symlink()]


def size_on_disk(pulled: Pulled) -> int:
    return sum(p.stat().st_size for p in hub_files(pulled) if p.is_file() and not p.is_symlink())


def describe(pulled: Pulled) -> JsonObject:
    return {**asdict(pulled), "present": _complete(pulled.folder()), "size_bytes": size_on_disk(pulled)}
