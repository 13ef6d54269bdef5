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
from lts_cli.space import Arch, unique
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
    """A gallery entry by id or unique id prefix of at least 4 hex digits (e.g. `gpt2_a9e3`)."""
    found = unique(ref, (e.id for e in entries()), "gallery ids")
    if found is None:
        raise NotFound(
            f"no gallery model {ref!r} (an id, or gpt2_ and at least 4 of its hex digits); `lts gallery list`"
        )
    return next(e for e in entries() if e.id == found)


@dataclass(frozen=True)
class Resolved:
    arch: Arch
    label: str  # what the user will recognise: the published id, the archid or the file
    entry: GalleryEntry | None  # published figures, when the architecture is in the gallery
    notes: tuple[str, ...] = ()  # what the user should know about this reference


def arch_from_file(path: Path) -> Arch:
    """Read an architecture from a gallery-style or lts JSON/YAML file, or a folder's: its arch.json
    (lts's model and export folders), else its transformers config.json (any GPT-2 model folder)."""
    from lts_cli.workspace import ARCH_FILE

    if path.is_dir():
        if (path / ARCH_FILE).is_file():
            path = path / ARCH_FILE
        elif (path / "config.json").is_file():
            config = load_file(path / "config.json")
            if not isinstance(config, dict):
                raise LtsError(f"{path / 'config.json'} is not a JSON object")
            return Arch.from_hf_config(config, source=str(path / "config.json"))
        else:
            raise LtsError(f"{path}: a folder without arch.json or config.json; give an architecture .json/.yaml file")
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
    record = workspace.pulled_record(model_id)
    pulled = False
    if record.is_file():
        try:
            pulled = (Path(json.loads(record.read_text(encoding="utf-8"))["path"]) / "config.json").is_file()
        except (OSError, ValueError, KeyError, TypeError):
            pulled = False
    models, exports_root = home / workspace.MODELS, home / workspace.EXPORTS
    places = (models / model_id, exports_root / model_id, exports_root / f"{model_id}-untrained")
    exports = [str(p) for place in places if place.is_dir() for p in sorted(place.iterdir())
               if (p / workspace.EXPORT_MARKER).is_file()]  # fmt: skip
    trained = (models / model_id / workspace.TRAINED_MARKER).is_file()
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
