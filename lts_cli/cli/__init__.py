"""The `lts` command line: a thin Typer layer over the library; one file per command group."""

from __future__ import annotations

import os
from typing import Any

import typer
from typer.core import TyperGroup

from lts_cli import __version__
from lts_cli.errors import LtsError


class _Group(TyperGroup):
    """Turns LtsError into `Error: ...` on stderr and its exit code; a traceback only with LTS_DEBUG=1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except LtsError as exc:
            if os.environ.get("LTS_DEBUG"):
                raise
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            if os.environ.get("LTS_DEBUG"):
                raise
            typer.echo("Interrupted; nothing half-written was kept.", err=True)
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=_Group,
    name="lts",
    help="Lightweight Transformer Search: find GPT-2 architectures on the Pareto front of "
    "quality (non-embedding parameters) vs. ONNX latency vs. memory on this machine, then train, export and run them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
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
    """Workspace: $LTS_HOME, else the platform's user data folder. LTS_DEBUG=1 shows tracebacks."""


from lts_cli.cli import export, gallery, generate, profile, search, train  # noqa: E402  (register the commands)

app.add_typer(search.app, name="search")
app.command("train")(train.train)
app.command("export")(export.export)
app.command("profile")(profile.profile)
app.add_typer(gallery.app, name="gallery")
app.command("generate")(generate.generate)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
