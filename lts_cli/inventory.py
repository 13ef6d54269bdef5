"""What the workspace holds (models, exports, token caches, measurements, leftovers of interrupted
writes) and how big it is; `tidying` removes what lts made of it.

Recognised as lts's: a trained model has `metrics.json`, an unfinished training `train.json`, an
export `export.json`, a token cache `meta.json`, a pulled model its record in `pulled/`, a search
run `config.yaml`; leftovers are the `.NAME.tmp-*` / `.NAME.old-*` folders of atomic writes. A
model folder a user put into `models/` is listed as such and never removed.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lts_cli import pretrained, workspace
from lts_cli.errors import LtsError, NotFound, UsageError
from lts_cli.gallery import GalleryEntry
from lts_cli.space import Arch, unique
from lts_cli.views import Block, JsonObject, Lines, Note, Pairs, Table, fmt_bytes

SOURCES = {
    "trained": "trained here",
    "training": "unfinished training",
    "pulled": "pulled from the Hub",
    "folder": "folder (not lts's)",
}
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
    detail: JsonObject = field(default_factory=dict)

    def to_dict(self) -> JsonObject:
        return asdict(self)

    def cells(self) -> list[str]:
        ppl = f"{self.val_perplexity:,.1f}" if self.val_perplexity is not None else "-"
        return [self.id, SOURCES[self.source], fmt_bytes(self.size_bytes), ppl, str(len(self.exports))]

    def view(self) -> list[Block]:
        """The model in full (`lts models show`)."""
        pairs = [("path", self.path), ("size on disk", fmt_bytes(self.size_bytes))]
        if self.arch:
            pairs.append(("architecture", ", ".join(f"{k} {v}" for k, v in self.arch.items())))
            pairs.append(("config.json", ", ".join(f"{k} {v}" for k, v in (self.config or {}).items())))
        if self.non_embedding_params is not None:
            pairs.append(("non-embedding params", f"{self.non_embedding_params:,}"))
        if self.val_perplexity is not None:
            pairs.append(("validation perplexity", f"{self.val_perplexity:,.2f}"))
        for key, item in self.detail.items():
            if item is not None:
                pairs.append((key.replace("_", " "), fmt_bytes(item) if key.endswith("_bytes") else str(item)))
        pairs += [("export", export) for export in self.exports]
        return [Pairs(pairs, f"{self.id}  {SOURCES[self.source]}")]


@dataclass(frozen=True)
class Models:
    """`lts models list`."""

    entries: list[ModelEntry]

    def to_dict(self) -> list[JsonObject]:
        return [m.to_dict() for m in self.entries]

    def view(self) -> list[Block]:
        if not self.entries:
            return [Note("no models yet: `lts train ID` trains one, `lts gallery pull ID` fetches a published one")]
        rows = [m.cells() for m in self.entries]
        return [Table(["model", "source", "size", "val ppl", "exports"], rows, left=2)]


def size(path: Path) -> int:
    """Bytes of the files under `path` (symbolic links not followed)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _exports_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p / workspace.EXPORT_MARKER).is_file())


def _json(path: Path) -> JsonObject:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def models() -> Models:
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
    return Models(out)


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


def _gallery_entry(model_id: str) -> GalleryEntry | None:
    from lts_cli.gallery import entries

    return next((e for e in entries() if e.id == model_id), None)


def find_model(ref: str, source: str | None = None) -> ModelEntry:
    """The one model `ref` names (an id or unique prefix), `source` to choose between namesakes."""
    if source is not None and source not in SOURCES:
        raise UsageError(f"--source must be one of {', '.join(SOURCES)}, got {source!r}")
    known = [m for m in models().entries if source is None or m.source == source]
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


# ---- caches -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenCache:
    path: str
    corpus: str | None
    tokens: int
    size_bytes: int
    in_use: bool  # an unfinished training needs it


@dataclass(frozen=True)
class ExportItem:
    path: str
    source: str | None
    dtype: str | None
    size_bytes: int
    referenced: bool  # its model is still here


@dataclass(frozen=True)
class Leftover:
    path: str
    size_bytes: int
    stale: bool  # older than LEFTOVER_AGE_S: no running lts is writing it


@dataclass(frozen=True)
class CacheReport:
    """`lts cache`: what lts keeps besides models and runs, and what `lts cache prune` would remove."""

    workspace: str
    measurements: int
    measurements_bytes: int
    token_caches: list[TokenCache]
    exports: list[ExportItem]
    leftovers: list[Leftover]

    @property
    def prunable(self) -> list[str]:
        return ([t.path for t in self.token_caches if not t.in_use] + [e.path for e in self.exports if not e.referenced]
                + [item.path for item in self.leftovers if item.stale])  # fmt: skip

    def to_dict(self) -> JsonObject:
        return {
            "workspace": self.workspace,
            "measurements": {"count": self.measurements, "size_bytes": self.measurements_bytes},
            "token_caches": [asdict(t) for t in self.token_caches],
            "exports": [asdict(e) for e in self.exports],
            "leftovers": [asdict(item) for item in self.leftovers],
            "prunable": self.prunable,
        }

    def view(self) -> list[Block]:
        db = fmt_bytes(self.measurements_bytes)
        lines = [f"workspace {self.workspace}", f"  measurements   {self.measurements:>6}  {db:>10}  (lts.db)"]
        for label, items in (("token caches", self.token_caches), ("exports", self.exports),
                             ("leftovers", self.leftovers)):  # fmt: skip
            total = fmt_bytes(sum(x.size_bytes for x in items))
            lines.append(f"  {label:<14} {len(items):>6}  {total:>10}")
        prunable = self.prunable
        hint = f"`lts cache prune` would remove {len(prunable)}: " + ", ".join(prunable) if prunable else ""
        return [Lines(lines), Note(hint or "nothing to prune")]


def report() -> CacheReport:
    """Sizes of what lts keeps besides models and runs, and what `prune` would remove."""
    home = workspace.home()
    db = home / workspace.DB_NAME
    measurements = 0
    if db.is_file():
        from lts_cli.store import Store

        with Store(db) as store:
            measurements = store.count_measurements()
    db_bytes = sum(size(p) for p in home.glob(workspace.DB_NAME + "*") if p.is_file())
    return CacheReport(str(home), measurements, db_bytes, _token_caches(), _all_exports(), _leftovers())


def _token_caches() -> list[TokenCache]:
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
        tokens = sum(meta.get("tokens", {}).values())
        out.append(TokenCache(str(folder), meta.get("corpus"), tokens, size(folder), meta.get("key") in needed))
    return out


def _all_exports() -> list[ExportItem]:
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


def _export_row(export: Path, referenced: bool, info: JsonObject | None = None) -> ExportItem:
    info = info if info is not None else _json(export / workspace.EXPORT_MARKER)
    return ExportItem(str(export), info.get("source"), info.get("dtype"), size(export), referenced)


def _leftovers() -> list[Leftover]:
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
                out.append(Leftover(str(path), size(path), age > LEFTOVER_AGE_S))
    return out
