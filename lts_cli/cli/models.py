"""`lts models`: the models lts keeps (trained here, pulled from the Hub, unfinished trainings), and removing them."""

from __future__ import annotations

from enum import StrEnum
from typing import Optional

import typer

from lts_cli.cli import complete
from lts_cli.cli.common import confirm, fmt_bytes, note, print_json, print_pairs, print_table

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

SOURCE_LABELS = {
    "trained": "trained here",
    "training": "unfinished training",
    "pulled": "pulled from the Hub",
    "folder": "folder (not lts's)",
}


@app.command("list")
def list_models(json_out: bool = typer.Option(False, "--json", help="Print the models as JSON.")) -> None:
    """Every model: its source, size on disk, validation perplexity and exports."""
    from lts_cli.inventory import models

    rows = models()
    if json_out:
        print_json([m.to_dict() for m in rows])
        return
    if not rows:
        note("no models yet: `lts train ID` trains one, `lts gallery pull ID` fetches a published one")
        return
    table = [
        [m.id, SOURCE_LABELS[m.source], fmt_bytes(m.size_bytes),
         f"{m.val_perplexity:,.1f}" if m.val_perplexity is not None else "-", str(len(m.exports))]
        for m in rows
    ]  # fmt: skip
    print_table(["model", "source", "size", "val ppl", "exports"], table, left=2)


@app.command("show")
def show(
    model_id: str = MODEL_ID,
    source: Optional[Source] = SOURCE,
    json_out: bool = typer.Option(False, "--json", help="Print the model as JSON."),
) -> None:
    """One model in full: where it is, its architecture, metrics and exports."""
    from lts_cli.inventory import find_model

    m = find_model(model_id, source.value if source else None)
    if json_out:
        print_json(m.to_dict())
        return
    pairs = [("path", m.path), ("size on disk", fmt_bytes(m.size_bytes))]
    if m.arch:
        pairs.append(("architecture", ", ".join(f"{k} {v}" for k, v in m.arch.items())))
        pairs.append(("config.json", ", ".join(f"{k} {v}" for k, v in (m.config or {}).items())))
    if m.non_embedding_params is not None:
        pairs.append(("non-embedding params", f"{m.non_embedding_params:,}"))
    if m.val_perplexity is not None:
        pairs.append(("validation perplexity", f"{m.val_perplexity:,.2f}"))
    for key, item in m.detail.items():
        if item is not None:
            pairs.append((key.replace("_", " "), fmt_bytes(item) if key.endswith("_bytes") else str(item)))
    pairs += [("export", export) for export in m.exports]
    print_pairs(pairs, f"{m.id}  {SOURCE_LABELS[m.source]}")


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
    from lts_cli.inventory import find_model, removal_plan, remove_model

    m = find_model(model_id, source.value if source else None)
    plan = removal_plan(m, hub_cache)
    for line in plan.lines():
        note(line)
    confirm(f"remove {m.id} ({SOURCE_LABELS[m.source]}), {fmt_bytes(plan.size_bytes())}", yes)
    removed = remove_model(plan, on_note=note)
    if json_out:
        print_json({"removed": removed, "kept": [str(p) for p in plan.kept()]})
        return
    note(f"removed {m.id}: " + ", ".join(removed))
    if m.source == "pulled" and not hub_cache:
        note("its files stay in the Hugging Face cache (shared with other tools); --hub-cache removes them too")
