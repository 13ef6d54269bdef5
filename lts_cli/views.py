"""How results and progress read: each result describes itself as blocks of plain text (a table, a
key/value record, lines, a note) built from its own fields, and each long job reports progress as
events; the CLI draws both (rich, stdout and stderr), the library never prints."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

JsonObject = dict[str, Any]  # a result as it is written to a JSON file or printed by --json


@dataclass(frozen=True)
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    title: str | None = None
    left: int = 1  # the first `left` columns are left-aligned, the rest right-aligned (numbers)


@dataclass(frozen=True)
class Pairs:
    """A record in full: `key  value` lines under a title."""

    pairs: Sequence[tuple[str, str]]
    title: str | None = None


@dataclass(frozen=True)
class Lines:
    """Lines of a result as they are; the heading (the first line) in bold on a terminal."""

    lines: Sequence[str]
    heading: str | None = None


@dataclass(frozen=True)
class Note:
    """A line for the user on stderr (a hint, where files went); `always`: with --json too."""

    text: str
    always: bool = False


Block = Table | Pairs | Lines | Note


class Shown(Protocol):
    """A command's result: JSON for scripts, blocks for people."""

    def to_dict(self) -> Any: ...

    def view(self) -> list[Block]: ...


@dataclass(frozen=True)
class Event:
    """What a long job tells whoever watches it: a line worth logging, and/or where its bars stand.
    `level` 0 is the job's own bar (generations, steps, architectures), 1 the bar within it."""

    kind: str  # what happened, for programs: "step", "saved", "generation_done", ...
    line: str | None = None
    level: int = 0
    done: int | None = None
    total: int | None = None
    label: str | None = None  # what the bar is doing now
    advance: bool = False  # one more done
    restart: bool = False  # the bar starts again (its clock too): the next generation's architectures
    data: Any = None  # the job's own value (a step number, a record), for programs


OnEvent = Callable[[Event], None]


def fmt_bytes(n: float) -> str:
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    while n >= 1024 and len(units) > 1:
        n, units = n / 1024, units[1:]
    return f"{n:.0f} B" if units[0] == "B" else f"{n:.1f} {units[0]}"


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.4f}" if seconds < 1 else f"{seconds:.3f}"


def shape(arch: Any) -> str:
    """`L/d/ff/h` of an architecture (an Arch or its fields as a mapping)."""
    get = arch.get if isinstance(arch, dict) else lambda k: getattr(arch, k)
    return "/".join(str(get(k)) for k in ("n_layer", "d_model", "d_inner", "n_head"))
