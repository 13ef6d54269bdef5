"""Commands that later releases build: listed in --help, and honest about not being there yet."""

from __future__ import annotations

import typer

from lts_cli.errors import LtsError

_PENDING = {
    "export": "Export a trained model to ONNX (KV cache, int8) for deployment.",
}


def register(app: typer.Typer) -> None:
    for name, summary in _PENDING.items():
        app.command(
            name,
            help=f"{summary} (not available yet)",
            context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        )(_make(name))


def _make(name: str):  # type: ignore[no-untyped-def]
    def command(ctx: typer.Context) -> None:
        raise LtsError(f"`lts {name}` is not available in this version of lts yet")

    return command
