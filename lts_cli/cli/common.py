"""Rendering helpers shared by the commands: stdout for results, stderr for progress and notes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

out = Console()  # results
err = Console(stderr=True)  # progress, notes, hints


def print_json(obj: Any) -> None:
    """Plain JSON on stdout (no colour codes), for scripts and `| jq`."""
    print(json.dumps(obj, indent=2))


def note(message: str) -> None:
    err.print(message, highlight=False, markup=False, soft_wrap=True)


def bar_progress() -> Progress:
    """The long-running commands' display on stderr: description, bar, count, elapsed, ETA."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


@contextmanager
def stage_progress(title: str) -> Iterator[Any]:
    """A transient progress line on stderr; yields a callback(stage, done, total)."""
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[title]}[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=None, title=title)

        def update(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total if total > 1 else None)

        yield update


def fmt_params(n: int) -> str:
    return f"{n / 1e6:.2f}M"


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.4f}" if seconds < 1 else f"{seconds:.3f}"
