"""What the commands share: option groups declared once (measurement, executor, corpus, training),
flags turned into typed config objects, and rendering (stdout for results, stderr for progress)."""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, Optional, TypeVar

import typer
from rich import box
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
from rich.table import Table

from lts_cli.views import Block, Event, Lines, Note, Pairs, Shown
from lts_cli.views import Table as TableBlock

T = TypeVar("T")
out = Console()  # results
err = Console(stderr=True)  # progress, notes, hints
if not out.is_terminal:
    # Piped or redirected: no terminal width to fit, so never wrap a table row or cut an id with "…".
    out = Console(width=100_000)


class ExecutorChoice(StrEnum):
    local = "local"
    ray = "ray"


class Quantize(StrEnum):
    int8 = "int8"


class Backend(StrEnum):
    torch = "torch"
    onnx = "onnx"


# ---- option groups ----------------------------------------------------------------------------
# Each maps the config field it sets to (type, option). A command takes groups with `with_options`
# (they join its signature, so Typer sees them) and receives their values in `**given`; `pick`
# turns what was given of a group into that config's changes.

Group = Mapping[str, tuple[Any, Any]]
F = TypeVar("F", bound=Callable[..., Any])


def with_options(*groups: Group) -> Callable[[F], F]:
    """Add the groups' options to a command's signature, after its own parameters."""

    def wrap(func: F) -> F:
        signature = inspect.signature(func)
        own = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)
            for group in groups
            for name, (annotation, option) in group.items()
        ]
        func.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
        return func

    return wrap


def option(flags: str | tuple[str, ...], text: str, shown: Any = None, **kw: Any) -> Any:
    """An option that defaults to None (not given: the config file or the default decides), with the
    effective default `shown` in --help."""
    default = False if shown is None else f"{shown:g}" if isinstance(shown, float) else str(shown)
    names = (flags,) if isinstance(flags, str) else flags
    return typer.Option(None, *names, help=text, show_default=default, **kw)


def options_for(
    config: Any, helps: Mapping[str, str] | Sequence[str], **special: Mapping[str, Any]
) -> dict[str, tuple[Any, Any]]:
    """Options for the fields of a config dataclass, typed as the fields are, with `config`'s values as
    the defaults shown: `helps` names the fields and their help (or only the fields: the help is the
    class's HELP); `special[field]` gives other flags (`flags=("--generations", "-g")`, `--on/--off`
    for a boolean) or Typer keywords."""
    hints: dict[str, Any] = typing.get_type_hints(type(config))
    if not isinstance(helps, Mapping):
        helps = {name: type(config).HELP[name] for name in helps}
    out = {}
    for name, text in helps.items():
        kind, shown, extra = hints[name], getattr(config, name), dict(special.get(name, {}))
        flags = extra.pop("flags", "--" + name.replace("_", "-"))
        if kind is bool:  # `--screen/--no-screen`: the default shown is the flag that is on
            shown = flags.split("/")[0 if shown else 1].lstrip("-")
        if typing.get_origin(kind) is typing.Literal:  # choices: an enum of the values, any case
            kind = _choices(name, typing.get_args(kind))
            extra.setdefault("case_sensitive", False)
        out[name] = (Optional[kind], option(flags, text, shown, **extra))
    return out


def _choices(name: str, values: Sequence[str]) -> Any:
    """An enum of a Literal's values (how Typer takes choices)."""
    return StrEnum(name.title().replace("_", ""), [(v, v) for v in values])


def measure_options(d: Any) -> dict[str, tuple[Any, Any]]:
    """MeasureSettings' fields (search, profile, predictor), with `d`'s defaults in --help."""
    return options_for(d, list(d.HELP), adaptive={"flags": "--adaptive/--fixed-runs"})


EXECUTOR: Group = {
    "executor": (ExecutorChoice, typer.Option(ExecutorChoice.local, "--executor", case_sensitive=False,
                 help="Where to measure: this machine, or the lts_bench slots of a Ray cluster.")),
    "ray_address": (Optional[str], option("--ray-address", "With --executor ray: the cluster (HEAD:6379).",
                    "$RAY_ADDRESS, else a local Ray instance", metavar="ADDR")),
    "target": (Optional[str], option("--target", "With --executor ray: only nodes started with the resource "
               "lts_target_LABEL.", metavar="LABEL")),
}  # fmt: skip

CORPUS: Group = {
    "data": (Optional[Path], option("--data", "A .txt file, a folder of .txt files, or a .jsonl file.",
             "the embedded corpus")),
    "dataset": (Optional[str], option("--dataset", "A Hugging Face Hub dataset (needs `datasets`).",
                metavar="NAME[:CONFIG]")),
    "text_field": (str, typer.Option("text", "--text-field", help="The text field of .jsonl files and datasets.")),
}  # fmt: skip


def train_options(d: Any) -> dict[str, tuple[Any, Any]]:
    """TrainConfig's fields shared by train and proxy, with `d`'s defaults in --help."""
    return options_for(d, ["max_steps", "batch_size", "seq_len", "lr", "warmup_steps", "seed"])


def pick(params: Mapping[str, Any], group: Mapping[str, Any]) -> dict[str, Any]:
    """The values of `group`'s options in a command's parsed `params` (enums as their values)."""
    return {name: value.value if isinstance(value, Enum) else value for name, value in params.items() if name in group}


@contextmanager
def flags_named(changes: Mapping[str, Any], path: Path | None = None, also: Sequence[str] = ()) -> Iterator[None]:
    """Turn the library's ConfigError (which names config fields) into a usage error naming each field
    as the user gave it: a flag (`--seq-len`) when a flag set it (or `also` lists it), else the key
    and the file it came from."""
    from lts_cli.config import given
    from lts_cli.errors import ConfigError, UsageError

    try:
        yield
    except ConfigError as exc:
        flags = given(changes) | set(also)
        names = [flag_name(f) if f in flags else f"{f} (in {path})" if path else flag_or_field(f) for f in exc.fields]
        raise UsageError(exc.named(names)) from exc


def configure(cls: type[T], path: Path | None, **changes: Any) -> T:
    """A config object from defaults < `path` < the flags given (see `flags_named`)."""
    from lts_cli.config import load

    with flags_named(changes, path):
        return load(cls, path, **changes)


def flag_name(field: str) -> str:
    """The command-line flag of a config field: `measure.seq_len` -> `--seq-len`."""
    return "--" + field.rsplit(".", 1)[-1].replace("_", "-")


def flag_or_field(field: str) -> str:
    """A field's flag when some command has one (`--seq-len`), else the field as a config file
    names it (`space.n_positions`)."""
    from lts_cli.cli import known_flags

    flag = flag_name(field)
    return flag if flag in known_flags() else field


def trials_note(settings: Any) -> None:
    """Say so when --trials overrides the adaptive minimum."""
    if settings.adaptive and settings.trials < settings.min_trials:
        note(
            f"--trials {settings.trials} is below the adaptive minimum of {settings.min_trials} runs: "
            f"each architecture gets {settings.trials} timed run(s)"
        )


def where(given: Mapping[str, Any]) -> Any:
    """The executor group's flags as a measurer.Where."""
    from lts_cli.measurer import Where

    return Where(given["executor"].value, given["ray_address"], given["target"])


# ---- rendering ----------------------------------------------------------------------------------


def print_json(obj: Any) -> None:
    """Plain JSON on stdout (no colour codes), for scripts and `| jq`."""
    print(json.dumps(obj, indent=2, default=str))


def note(message: str) -> None:
    err.print(message, highlight=False, markup=False, soft_wrap=True)


def show(result: Shown, json_out: bool = False) -> None:
    """A command's result: its JSON on stdout with --json, else its blocks (tables and records on
    stdout, notes on stderr)."""
    blocks = result.view()
    if json_out:
        for block in blocks:
            if isinstance(block, Note) and block.always:
                note(block.text)
        print_json(result.to_dict())
        return
    for block in blocks:
        draw(block)


def draw(block: Block) -> None:
    if isinstance(block, Note):
        note(block.text)
    elif isinstance(block, TableBlock):
        print_table(block.headers, block.rows, block.title, block.left)
    elif isinstance(block, Pairs):
        if block.title:
            out.print(block.title, highlight=False, soft_wrap=True)
        pad = max((len(k) for k, _ in block.pairs), default=0)
        for key, value in block.pairs:
            out.print(f"  {key.ljust(pad)}  {value}", highlight=False, soft_wrap=True)
    elif isinstance(block, Lines):
        if block.heading is not None:
            out.print(block.heading, style="bold", highlight=False, soft_wrap=True)
        for line in block.lines:  # as they are: no markup, emoji codes or tabs expanded (generated text)
            print(line)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None, left: int = 1) -> None:
    """A table on stdout, the first `left` columns left-aligned; never a cell cut with "…": on a
    terminal narrower than the table, each row is listed as `header: value` lines instead."""
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), pad_edge=False)
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i < left else "right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    from rich.measure import Measurement

    width = Measurement.get(out, out.options.update(max_width=10**6), table).maximum  # unclamped
    if width <= out.width:
        out.print(table)
        return
    if title:
        out.print(title, highlight=False)
    for row in rows:
        for header, cell in zip(headers, row, strict=True):
            out.print(f"{header.replace(chr(10), ' ')}: {cell}", highlight=False, soft_wrap=True)
        out.print("")


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


class Watch:
    """A long job's events on stderr while it runs: its bar (level 0), the bar within it (level 1),
    and the lines it logs; remembers the last event of each kind (what was saved when Ctrl-C came)."""

    def __init__(self, *bars: str) -> None:
        self.live = bar_progress()
        self.bars = [self.live.add_task(label, total=None) for label in bars]
        self.last: dict[str, Event] = {}

    def __call__(self, event: Event) -> None:
        self.last[event.kind] = event
        if event.level < len(self.bars):
            bar = self.bars[event.level]
            if event.restart:
                self.live.reset(bar, total=event.total, completed=event.done or 0)
            elif event.done is not None or event.total is not None:
                self.live.update(bar, total=event.total, completed=event.done)
            if event.label is not None:
                self.live.update(bar, description=event.label)
            if event.advance:
                self.live.advance(bar)
        if event.line is not None:
            self.live.console.print(event.line, highlight=False, markup=False, soft_wrap=True)


@contextmanager
def stage_progress(title: str) -> Iterator[Callable[[str, int, int], None]]:
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


def confirm(question: str, yes: bool) -> None:
    """Ask on the terminal (stderr) unless --yes; without a terminal, refuse instead of guessing."""
    import sys

    from lts_cli.errors import UsageError

    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{question}: add --yes to confirm (there is no terminal to ask on)")
    if not typer.confirm(f"{question}?", err=True):
        raise typer.Exit(1)
