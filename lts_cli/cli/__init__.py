"""The `lts` command line: a thin Typer layer over the library; one file per command group."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

try:  # typer 0.2x carries its own click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover  (older typer, on the click package)
    from click.exceptions import ClickException  # type: ignore[assignment]

from lts_cli import __version__
from lts_cli.errors import ConfigError, LtsError

# The libraries lts drives warn about their own internals (deprecations, pickle protocols, tracer
# notes); lts says what the user needs to know itself, so their warnings are dropped.
QUIET = r"(torch|transformers|onnx|onnxruntime|onnxscript|huggingface_hub|datasets|ray|matplotlib|accelerate)(\.|$)"


def _quiet_libraries() -> None:
    import warnings

    warnings.filterwarnings("ignore", module=QUIET)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _error(message: str, code: int) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


class _Group(TyperGroup):
    """One error path for every command: `Error: ...` as one line on stderr and the exit code (2 for
    usage errors, Typer's and ours alike), a traceback only with LTS_DEBUG=1; and `--help` that says
    where the workspace is."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        _quiet_libraries()
        try:
            result = super().main(args, prog_name, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
        except ClickException as exc:  # Typer's own checks: unknown options, bad values, choices
            command = exc.ctx.command_path if getattr(exc, "ctx", None) else "lts"  # type: ignore[attr-defined]
            message = exc.format_message().replace("Value error, ", "")  # pydantic's prefix, as Typer passes it on
            if message:  # (none when a bare group printed its help)
                typer.echo(f"Error: {message} (see `{command} --help`)", err=True)
            code = exc.exit_code
        except typer.Abort:
            typer.echo("Aborted.", err=True)
            code = 1
        if standalone_mode:
            sys.exit(code)
        return code

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:  # the library names the field; the user typed a flag
            if os.environ.get("LTS_DEBUG"):
                raise
            from lts_cli.cli.common import flag_or_field

            raise _error(exc.named([flag_or_field(f) for f in exc.fields]), exc.exit_code) from None
        except LtsError as exc:
            if os.environ.get("LTS_DEBUG"):
                raise
            raise _error(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            if os.environ.get("LTS_DEBUG"):
                raise
            typer.echo("Interrupted; nothing half-written was kept.", err=True)
            raise typer.Exit(130) from None

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from lts_cli.workspace import ENV_HOME, home

        super().format_help(ctx, formatter)
        typer.echo(
            f"Workspace: {home()} (set {ENV_HOME} to use another folder). "
            "LTS_DEBUG=1 shows tracebacks. HF_HUB_OFFLINE=1 keeps lts off the Hugging Face Hub."
        )


app = typer.Typer(
    cls=_Group,
    name="lts",
    help="Lightweight Transformer Search: find GPT-2 architectures on the Pareto front of "
    "quality (non-embedding parameters) vs. ONNX latency vs. memory on this machine, then train, export and run them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lts {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    pass


from lts_cli.cli import (  # noqa: E402  (register the commands)
    cache,
    export,
    gallery,
    generate,
    models,
    predictor,
    profile,
    proxy,
    search,
    train,
)

app.add_typer(search.app, name="search")
app.command("train")(train.train)
app.command("export")(export.export)
app.command("profile")(profile.profile)
app.add_typer(gallery.app, name="gallery")
app.command("generate")(generate.generate)
app.add_typer(models.app, name="models")
app.add_typer(cache.app, name="cache")
app.add_typer(predictor.app, name="predictor")
app.command("proxy")(proxy.proxy)


@functools.cache
def known_flags() -> frozenset[str]:
    """Every option of every command (to name a config field by its flag where it has one)."""
    import typer.main

    group = typer.main.get_command(app)
    found: set[str] = set()

    def walk(command: Any) -> None:
        for param in getattr(command, "params", []):
            found.update(o for o in getattr(param, "opts", []) if o.startswith("--"))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(group)
    return frozenset(found)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
