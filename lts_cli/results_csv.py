"""A search run's CSV files: results.csv (every measured architecture, in archai's columns around the
chosen objectives, then the architecture) and screened.csv (what a screened search predicted and did
not measure)."""

from __future__ import annotations

import csv
import io
from typing import Any

from lts_cli import objectives as registry
from lts_cli.search_state import Candidate, Record
from lts_cli.space import ARCH_FIELDS

# archai's columns around the chosen objectives, then the architecture, then any other value recorded.
_RUN_COLUMNS = ["parent", "parents", "iteration_num", "search_walltime_hours", "is_pareto"]


def csv_columns(objectives: tuple[str, ...], records: list[Record]) -> list[str]:
    """`archid`, the chosen objectives, archai's run columns, the architecture fields, every other
    objective some record has a value for (in registry order), `cached`, `latency_source`, and in a
    screened search what was predicted for each before it was measured. For the published
    objectives this begins with archai's layout."""
    recorded = {name for r in records for name in r.values}
    others = [name for name in registry.REGISTRY if name in recorded and name not in objectives]
    predicted = sorted(
        {f"predicted_{n}" for r in records if r.predicted for n in r.predicted if n in registry.PREDICTABLE}
    )
    return ["archid", *objectives, *_RUN_COLUMNS, *ARCH_FIELDS, *others, "cached", "latency_source", *predicted]


def results(objectives: tuple[str, ...], records: list[Record], front_ids: set[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=csv_columns(objectives, records), lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    for r in records:
        row: dict[str, Any] = {
            "archid": r.archid,
            **r.values,
            "parent": r.parent or "",
            "parents": r.parents or "",
            "iteration_num": r.generation,
            "search_walltime_hours": r.walltime_s / 3600,
            "is_pareto": r.archid in front_ids,
            "cached": r.cached,
            "latency_source": "measured",  # every record is; predictions live in screened.csv
            **r.arch,
            **{f"predicted_{n}": v for n, v in (r.predicted or {}).items() if n in registry.PREDICTABLE},
        }
        for name in row.keys() & registry.REGISTRY.keys():
            if registry.get(name).unit == "params":
                row[name] = int(row[name])
        writer.writerow(row)
    return out.getvalue()


def screened(objectives: tuple[str, ...], screened: list[Candidate]) -> str:
    """The candidates a screened search predicted and did not measure: never part of its front."""
    out = io.StringIO()
    columns = ["archid", "generation", *objectives, *ARCH_FIELDS, "latency_source"]
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for c in screened:
        writer.writerow({"archid": c.archid, "generation": c.generation, **(c.predicted or {}), **c.arch,
                         "latency_source": "predicted"})  # fmt: skip
    return out.getvalue()
