"""`lts models`: the models lts keeps (trained here, pulled from the Hub, unfinished trainings), and removing them."""

from __future__ import annotations

from enum import StrEnum
from typing import Optional

import typer

from lts_cli.cli import complete
from lts_cli.cli.common import confirm, note, print_json, show

app = typer.Typer(help="The models in the workspace: list, show, remove.", no_args_is_help=True)


class Source(StrEnum):
    trained = "trained"
    training = "training"
    pulled = "pulled"
    folder = "folder"


MODEL_ID = typer.Argument(
    ..., metavar="ID", help="Model name or id (gpt2_ and 4 hex digits are enough).", autocompletion=complete.models
)
SOURCE = typer.Option(None, "--source", case_sensitive=False, help="When two models share an id.", show_default="any")


@app.command("list")
def list_models(json_out: bool = typer.Option(False, "--json", help="Print the models as JSON.")) -> None:
    """Every model: its source, size on disk, validation perplexity and exports."""
    from lts_cli.inventory import models

    show(models(), json_out)


@app.command("show")
def show_model(
    model_id: str = MODEL_ID,
    source: Optional[Source] = SOURCE,
    json_out: bool = typer.Option(False, "--json", help="Print the model as JSON."),
) -> None:
    """One model in full: where it is, its architecture, metrics and exports."""
    from lts_cli.inventory import find_model

    show(find_model(model_id, source.value if source else None), json_out)


@app.command("rm")
def remove(
    model_id: str = MODEL_ID,
    source: Optional[Source] = SOURCE,
    hub_cache: bool = typer.Option(
        False, "--hub-cache", help="A pulled model: also delete its files from the shared Hugging Face cache."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
    json_out: bool = typer.Option(False, "--json", help="Print what was removed as JSON."),
) -> None:
    """Remove a model lts made (and its exports); a pulled model's Hub files stay unless --hub-cache."""
    from lts_cli.inventory import find_model
    from lts_cli.tidying import removal_plan, remove_model

    m = find_model(model_id, source.value if source else None)
    plan = removal_plan(m, hub_cache)
    for line in plan.lines():
        note(line)
    confirm(plan.question(), yes)
    removed = remove_model(plan, on_note=note)
    if json_out:
        print_json(plan.to_dict())
        return
    note(f"removed {m.id}: " + ", ".join(removed))
    if m.source == "pulled" and not hub_cache:
        note("its files stay in the Hugging Face cache (shared with other tools); --hub-cache removes them too")
