"""The published 20-model gallery, and resolving any architecture reference (id, prefix or file)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from lts_cli.config import load_file
from lts_cli.errors import LtsError, NotFound
from lts_cli.space import Arch
from lts_cli.store import Store

# The gallery latencies were measured by archai's evaluator with its default of the time: seq 192.
PUBLISHED_LATENCY_SEQ_LEN = 192


@dataclass(frozen=True)
class GalleryEntry:
    id: str  # the published id, kept as given (19 of 20 equal Arch.archid; see tests)
    arch: Arch
    params_m: float  # published non-embedding parameters, millions
    latency_s: float  # published ONNX latency, seconds, at PUBLISHED_LATENCY_SEQ_LEN
    memory_mb: float  # published ONNX file size, MiB

    def published(self) -> dict[str, Any]:
        return {
            "non_embedding_params_m": self.params_m,
            "latency_s": self.latency_s,
            "latency_seq_len": PUBLISHED_LATENCY_SEQ_LEN,
            "memory_mib": self.memory_mb,
        }


@functools.cache
def _document() -> dict[str, Any]:
    text = resources.files("lts_cli").joinpath("data/gallery.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def published_settings() -> dict[str, str]:
    return dict(_document()["published_settings"])


@functools.cache
def entries() -> tuple[GalleryEntry, ...]:
    """The 20 published architectures, smallest first (the order of the published table)."""
    out = []
    for item in _document()["models"]:
        pub = item["published"]
        out.append(
            GalleryEntry(
                id=item["id"],
                arch=Arch.from_config(item["config"], source=f"gallery {item['id']}"),
                params_m=pub["non_embedding_params_m"],
                latency_s=pub["latency_s"],
                memory_mb=pub["memory_mb"],
            )
        )
    return tuple(out)


def entry_for(arch: Arch) -> GalleryEntry | None:
    """The gallery entry with exactly this architecture, if any."""
    return next((e for e in entries() if e.arch == arch), None)


def find(ref: str) -> GalleryEntry:
    """A gallery entry by id or unique id prefix (e.g. `gpt2_a9e3`)."""
    matches = [e for e in entries() if e.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound(f"no gallery model {ref!r}; `lts gallery list` shows the 20 ids")
    raise LtsError(f"{ref!r} matches {len(matches)} gallery ids; give more characters")


@dataclass(frozen=True)
class Resolved:
    arch: Arch
    label: str  # what the user will recognise: the published id, the archid or the file
    entry: GalleryEntry | None  # published figures, when the architecture is in the gallery


def resolve(ref: str, store: Store | None = None) -> Resolved:
    """An architecture from a gallery id, a workspace archid (or unique prefix of either) or a file."""
    path = Path(ref).expanduser()
    if path.suffix.lower() in (".json", ".yaml", ".yml") or path.exists():
        arch = arch_from_file(path)
        return Resolved(arch, str(path), entry_for(arch))
    gallery_hits = [e for e in entries() if e.id.startswith(ref)]
    stored = store.find_archs(ref) if store is not None else []
    candidates: dict[str, Resolved] = {e.id: Resolved(e.arch, e.id, e) for e in gallery_hits}
    for arch in stored:
        if not any(r.arch == arch for r in candidates.values()):
            candidates[arch.archid] = Resolved(arch, arch.archid, entry_for(arch))
    if len(candidates) == 1:
        return next(iter(candidates.values()))
    if not candidates:
        raise NotFound(
            f"unknown architecture {ref!r}: not a gallery id, not an id in this workspace, and not a file; "
            "see `lts gallery list`, or give a .json/.yaml file with n_layer, d_model, d_inner and n_head"
        )
    shown = ", ".join(sorted(candidates)[:4])
    raise LtsError(f"{ref!r} is ambiguous: it matches {len(candidates)} ids ({shown}); give more characters")


def arch_from_file(path: Path) -> Arch:
    """Read an architecture from a gallery-style or lts JSON/YAML file (or a folder's arch.json)."""
    if path.is_dir():
        if not (path / "arch.json").is_file():
            raise LtsError(f"{path}: a folder without arch.json; give an architecture .json/.yaml file")
        path = path / "arch.json"
    data = load_file(path)
    return Arch.from_config(data, source=str(path))


def gallery_row(entry: GalleryEntry, all_measurements: bool = False, store: Store | None = None) -> dict[str, Any]:
    """One entry as data: config, published figures, what lts computes and has measured here."""
    return arch_row(entry.id, entry.arch, entry.published(), store, all_measurements)


def arch_row(
    row_id: str, arch: Arch, published: dict[str, Any] | None, store: Store | None, all_measurements: bool = False
) -> dict[str, Any]:
    """An architecture as data: what lts computes, and (from `store`) what it has measured here."""
    lts: dict[str, Any] = {
        "non_embedding_params": arch.non_embedding_params,
        "non_embedding_params_m": round(arch.non_embedding_params / 1e6, 2),
        "unique_params": arch.unique_params,
        "memory_mib_analytic": 4 * arch.unique_params / 2**20,
    }
    measured = _measurements(arch, store)
    if all_measurements:
        lts["measurements"] = measured
    else:
        lts["latest_measurement"] = _preferred(measured)
    return {
        "id": row_id,
        "archid": arch.archid,
        "arch": arch.to_dict(),
        "config": arch.to_config(),
        "published": published,
        "lts": lts,
    }


def gallery_report() -> list[dict[str, Any]]:
    """The published gallery as data, with this machine's measurements and what the workspace has of
    each model: trained here, the pre-trained one pulled from the Hub, exports."""
    from lts_cli.store import open_store

    with open_store() as store:
        return [{**gallery_row(e, store=store), "local": local_copies(e.id)} for e in entries()]


def local_copies(model_id: str) -> dict[str, Any]:
    """Whether `model_id` is trained here and pulled (with its files in the Hub cache), and its exports."""
    from lts_cli import workspace

    home = workspace.home()
    record = home / "pulled" / f"{model_id}.json"
    pulled = False
    if record.is_file():
        try:
            pulled = (Path(json.loads(record.read_text(encoding="utf-8"))["path"]) / "config.json").is_file()
        except (OSError, ValueError, KeyError, TypeError):
            pulled = False
    places = (home / "models" / model_id, home / "exports" / model_id, home / "exports" / f"{model_id}-untrained")
    exports = [str(p) for place in places if place.is_dir() for p in sorted(place.iterdir())
               if (p / workspace.EXPORT_MARKER).is_file()]  # fmt: skip
    trained = (home / "models" / model_id / workspace.TRAINED_MARKER).is_file()
    return {"trained": trained, "pulled": pulled, "exports": exports}


def _measurements(arch: Arch, store: Store | None) -> list[dict[str, Any]]:
    """This machine's cached measurements of `arch` (any settings), newest first."""
    from lts_cli.machine import fingerprint
    from lts_cli.store import open_store

    if store is None:
        with open_store() as own:
            return own.measurements_for(arch.archid, fingerprint())
    return store.measurements_for(arch.archid, fingerprint())


def _preferred(measured: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The measurement to show beside the published one: like-for-like (seq 192, batch 1) first."""
    prefill = [m for m in measured if m.get("kind", "prefill") == "prefill"]
    for m in prefill:
        if m["settings"]["seq_len"] == PUBLISHED_LATENCY_SEQ_LEN and m["settings"]["batch_size"] == 1:
            return m
    return prefill[0] if prefill else None
