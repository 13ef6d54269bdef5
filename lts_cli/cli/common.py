"""Rendering helpers shared by the commands: stdout for results, stderr for progress and notes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum, StrEnum
from typing import Any

import typer
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
if not out.is_terminal:
    # Piped or redirected: no terminal width to fit, so never wrap a table row or cut an id with "…".
    out = Console(width=100_000)


class GraphChoice(StrEnum):
    next_token = "next-token"
    logits = "logits"


class ExecutorChoice(StrEnum):
    local = "local"
    ray = "ray"


def executor_options() -> dict[str, Any]:
    """`--executor`, `--ray-address`, `--target`: where measurements run (search and profile)."""
    return {
        "executor": typer.Option(
            ExecutorChoice.local,
            "--executor",
            case_sensitive=False,
            help="Where to measure: this machine, or the lts_bench slots of a Ray cluster.",
        ),
        "ray_address": typer.Option(
            None,
            "--ray-address",
            metavar="ADDR",
            help="With --executor ray: the cluster (HEAD:6379).",
            show_default="$RAY_ADDRESS, else a local Ray instance",
        ),
        "target": typer.Option(
            None,
            "--target",
            metavar="LABEL",
            help="With --executor ray: only nodes started with the resource lts_target_LABEL.",
            show_default=False,
        ),
    }


def data_options() -> dict[str, Any]:
    """`--data`, `--dataset`, `--text-field`: the corpus (train and proxy)."""
    return {
        "data": typer.Option(
            None,
            "--data",
            help="A .txt file, a folder of .txt files, or a .jsonl file.",
            show_default="the embedded Shakespeare corpus",
        ),
        "dataset": typer.Option(
            None,
            "--dataset",
            metavar="NAME[:CONFIG]",
            help="A Hugging Face Hub dataset (needs `datasets`).",
            show_default=False,
        ),
        "text_field": typer.Option("text", "--text-field", help="The text field of .jsonl files and datasets."),
    }


class OptLevel(StrEnum):
    disable = "disable"
    basic = "basic"
    extended = "extended"
    all = "all"


class Quantize(StrEnum):
    int8 = "int8"


class Backend(StrEnum):
    torch = "torch"
    onnx = "onnx"


def value(choice: Enum | None) -> Any:
    """The plain value of an optional enum option (None when the flag was not given)."""
    return None if choice is None else choice.value


def default(cls: Any, field: str) -> str:
    """A config field's default (dotted for nested sections), for `--help`: the options themselves
    default to None, meaning "not given", so that a YAML file can set them."""
    found = cls()
    for part in field.split("."):
        found = getattr(found, part)
    return f"{found:g}" if isinstance(found, float) else str(found)


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
        disable=not err.is_terminal,  # a bar redrawn into a log file or pipe is noise
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
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task("starting", total=None, title=title)

        def update(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total if total > 1 else None)

        yield update


def objective_header(name: str) -> str:
    from lts_cli import objectives as registry

    o = registry.get(name)
    return f"{o.short} {'M' if o.unit == 'params' else o.unit}"


def objective_cell(name: str, value: float | None) -> str:
    from lts_cli import objectives as registry

    if value is None:
        return "-"
    o = registry.get(name)
    if o.unit == "params":
        return f"{value / 1e6:.2f}"
    return fmt_s(value) if o.unit == "s" else f"{value:.2f}"


def fmt_bytes(n: float) -> str:
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    while n >= 1024 and len(units) > 1:
        n, units = n / 1024, units[1:]
    return f"{n:.0f} B" if units[0] == "B" else f"{n:.1f} {units[0]}"


def confirm(question: str, yes: bool) -> None:
    """Ask on the terminal (stderr) unless --yes; without a terminal, refuse instead of guessing."""
    import sys

    import typer

    from lts_cli.errors import UsageError

    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{question}: add --yes to confirm (there is no terminal to ask on)")
    if not typer.confirm(f"{question}?", err=True):
        raise typer.Exit(1)


def fmt_params(n: int) -> str:
    return f"{n / 1e6:.2f}M"


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.4f}" if seconds < 1 else f"{seconds:.3f}"
