"""The published 20-model gallery, and resolving any architecture reference (id, prefix or file)."""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from lts_cli import objectives as registry
from lts_cli.config import load_file
from lts_cli.errors import LtsError, NotFound
from lts_cli.settings import Measurement
from lts_cli.space import Arch, unique
from lts_cli.store import Store
from lts_cli.views import Block, JsonObject, Note, Pairs, Table, fmt_s, shape

# The gallery latencies were measured by archai's evaluator with its default of the time: seq 192.
PUBLISHED_LATENCY_SEQ_LEN = 192


@dataclass(frozen=True)
class GalleryEntry:
    id: str  # the published id, kept as given (19 of 20 equal Arch.archid; see tests)
    arch: Arch
    params_m: float  # published non-embedding parameters, millions
    latency_s: float  # published ONNX latency, seconds, at PUBLISHED_LATENCY_SEQ_LEN
    memory_mb: float  # published ONNX file size, MiB

    def published(self) -> dict[str, float]:
        return {
            "non_embedding_params_m": self.params_m,
            "latency_s": self.latency_s,
            "latency_seq_len": PUBLISHED_LATENCY_SEQ_LEN,
            "memory_mib": self.memory_mb,
        }


@functools.cache
def _document() -> JsonObject:
    text = resources.files("lts_cli").joinpath("data/gallery.json").read_text(encoding="utf-8")
    doc: JsonObject = json.loads(text)
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


@dataclass(frozen=True)
class LocalCopies:
    trained: bool  # a model of this id trained here
    pulled: bool  # the published checkpoint, pulled into the Hub cache
    exports: list[str]


@dataclass(frozen=True)
class Row:
    """An architecture beside what lts computes of it and has measured of it on this machine."""

    id: str
    arch: Arch
    published: dict[str, float] | None  # the gallery's published figures
    measurements: list[Measurement]  # this machine's, any settings, newest first (damaged rows left out)
    damaged: int = 0  # cached rows of it that do not read as measurements
    local: LocalCopies | None = None
    run: str | None = None  # for a search run's member: the run, and the values it measured
    run_values: dict[str, float] | None = None

    def preferred(self) -> Measurement | None:
        """The measurement to show beside the published one: like-for-like (seq 192, batch 1) first."""
        prefill = [m for m in self.measurements if m.kind == "prefill"]
        alike = [m for m in prefill if m.settings.get("seq_len") == PUBLISHED_LATENCY_SEQ_LEN
                 and m.settings.get("batch_size") == 1]  # fmt: skip
        found = alike or prefill
        return found[0] if found else None

    def to_dict(self, all_measurements: bool = False) -> JsonObject:
        a = self.arch
        lts: JsonObject = {
            registry.QUALITY: a.non_embedding_params,
            "non_embedding_params_m": round(a.non_embedding_params / 1e6, 2),
            "unique_params": a.unique_params,
            "memory_mib_analytic": a.memory_estimate_mib,
        }
        if all_measurements:
            lts["measurements"] = [m.to_dict() for m in self.measurements]
        else:
            preferred = self.preferred()
            lts["latest_measurement"] = preferred.to_dict() if preferred else None
        out = {"id": self.id, "archid": a.archid, "arch": a.to_dict(), "config": a.to_config(),
               "published": self.published, "lts": lts}  # fmt: skip
        if self.local is not None:
            out["local"] = asdict(self.local)
        if self.run is not None:
            out |= {"run": self.run, "run_values": self.run_values}
        return out

    def cells(self) -> list[str]:
        """This row in `lts gallery list`: published / lts values side by side."""
        quality, latency, memory = (registry.get(n) for n in registry.DEFAULT)
        a, here, pub, local = self.arch, self.preferred(), self.published, self.local
        copies = "".join(flag for flag, on in (("T", local and local.trained), ("P", local and local.pulled)) if on)
        copies += f"E{len(local.exports)}" if local and local.exports else ""
        return [
            self.id[:14], shape(a), f"{_pub(quality, pub)}/{quality.format(a.non_embedding_params)}",
            f"{_pub(latency, pub)}/" + (f"{fmt_s(here.latency_s)}@{here.settings['seq_len']}" if here else "-"),
            f"{_pub(memory, pub)}/" + (f"{here.memory_mib:.2f}" if here else f"~{a.memory_estimate_mib:.2f}"),
            copies or "-",
        ]  # fmt: skip

    def view(self) -> list[Block]:
        """The row in full (`lts gallery show`): config, published figures, every measurement here."""
        a, pub = self.arch, self.published or {}
        pairs = [(key, str(value)) for key, value in a.to_dict().items()]
        pairs += [
            ("non-embedding params", f"{a.non_embedding_params:,} (published {pub['non_embedding_params_m']:.2f}M)"),
            ("unique params (tied head)", f"{a.unique_params:,}"),
            ("published latency", f"{pub['latency_s']:.3f} s at seq {pub['latency_seq_len']:.0f}"),
            ("published memory", f"{pub['memory_mib']:.2f} MiB (lts estimate {a.memory_estimate_mib:.2f})"),
        ]
        title = self.id + (f"\narchid (lts hash of this config): {a.archid}" if a.archid != self.id else "")
        if not self.measurements:
            hint = f"not measured on this machine yet: `lts profile {self.id}` (add --seq-len 192 to match the "
            return [Pairs(pairs, title), Note(hint + "published latency)")]
        rows = []
        for m in self.measurements:
            s = m.settings
            setup = (f"decode {s['batch_size']}x1 after {s['decode_context']}" if m.kind == "decode"
                     else f"{s['graph']} {s['batch_size']}x{s['seq_len']}")  # fmt: skip
            when = m.measured_at[:16].replace("T", " ")
            rows.append([when, f"{setup} t{s['threads']}", fmt_s(m.latency_s), f"{m.latency_cv:.1%}", str(m.runs),
                         f"{m.memory_mib:.2f}", f"{m.peak_rss_mib:.0f}"])  # fmt: skip
        headers = ["when (UTC)", "settings", "latency s", "CV", "runs", "MiB", "peak RSS MiB"]
        return [Pairs(pairs, title), Table(headers, rows, "measured on this machine (latency: median of the timed "
                                                            "runs)", left=2)]  # fmt: skip


def _pub(objective: registry.Objective, figures: dict[str, float] | None) -> str:
    value = objective.published_value(figures)
    return "-" if value is None else f"{value:.3f}" if objective.unit == "s" else objective.format(value)


@dataclass(frozen=True)
class Listing:
    """`lts gallery list`: the published rows, then a search run's front if asked for."""

    rows: list[Row]

    def to_dict(self) -> list[JsonObject]:
        return [r.to_dict() for r in self.rows]

    def view(self) -> list[Block]:
        headers = ["id", "L/d/ff/h", "params M pub/lts", f"latency s pub@{PUBLISHED_LATENCY_SEQ_LEN}/here@seq",
                   "memory MiB pub/lts", "local"]  # fmt: skip
        blocks: list[Block] = [
            Table(headers, [r.cells() for r in self.rows], "LTS gallery: published vs. lts on this machine", left=2),
            Note("ids are shortened (gpt2_ and 4 hex digits work); '~' memory = 4 bytes x unique parameters, "
                 "measured values replace it after `lts profile ID`; local: T trained here, P pre-trained model "
                 "pulled (`lts gallery pull ID`), E exports"),
        ]  # fmt: skip
        if damaged := sum(r.damaged for r in self.rows):
            blocks.append(Note(f"{damaged} cached measurement(s) could not be read and are left out; "
                               "`lts cache check` lists them"))  # fmt: skip
        return blocks


def row(row_id: str, arch: Arch, published: dict[str, float] | None, store: Store, **extra: Any) -> Row:
    """An architecture's row, with this machine's cached measurements of it from `store`."""
    from lts_cli.machine import fingerprint

    found = store.measurements_for(arch.archid, fingerprint())
    measured = [m for m in found if isinstance(m, Measurement)]
    return Row(row_id, arch, published, measured, len(found) - len(measured), **extra)


def gallery_row(entry: GalleryEntry, store: Store) -> Row:
    return row(entry.id, entry.arch, entry.published(), store, local=local_copies(entry.id))


def gallery_report(*more: Row) -> Listing:
    """The published gallery, with this machine's measurements and what the workspace has of each
    model: trained here, the pre-trained one pulled from the Hub, exports; then `more` rows."""
    from lts_cli.store import open_store

    with open_store() as store:
        return Listing([*(gallery_row(e, store) for e in entries()), *more])


def local_copies(model_id: str) -> LocalCopies:
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
    return LocalCopies(trained, pulled, exports)
