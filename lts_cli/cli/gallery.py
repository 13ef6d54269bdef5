"""`lts gallery`: the published architectures next to what lts computes and has measured here."""

from __future__ import annotations

from typing import Optional

import typer

from lts_cli.cli import complete
from lts_cli.cli.common import draw, note, option, print_json, show

app = typer.Typer(
    help="The published 20-model gallery: what lts computes and has measured on this machine, and the "
    "pre-trained models (lts gallery pull).",
    no_args_is_help=True,
)


@app.command("list")
def list_models(
    run: Optional[str] = option(
        "--run", "Also list the Pareto members of a search run.", metavar="RUN", autocompletion=complete.runs
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the entries as JSON."),
) -> None:
    """List the published architectures: config, published figures, and this machine's."""
    from lts_cli.gallery import gallery_report
    from lts_cli.runs import front_report

    show(gallery_report(*(front_report(run) if run is not None else [])), json_out)


@app.command("pull")
def pull(
    model_ids: list[str] = typer.Argument(
        None,
        metavar="[ID]...",
        help="Gallery ids (gpt2_ and 4 hex digits are enough).",
        autocompletion=complete.gallery,
    ),
    all_models: bool = typer.Option(False, "--all", help="All 20 published models (about 8 GB)."),
    repo: Optional[str] = option("--repo", "The Hub repository (also LTS_GALLERY_REPO).", "microsoft/lts-gpt2-sm"),
    revision: Optional[str] = option("--revision", "A branch, tag or commit of the repository.", "main"),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="List what would be downloaded, and its size; fetch nothing."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print what was pulled as JSON."),
) -> None:
    """Download the published pre-trained models (trained by their authors on The Pile) into the Hugging
    Face cache, check that their weights fill the architecture of their own config.json, and register
    them for generate, export and profile. Says how much it fetches, and refuses without the disk space."""
    from lts_cli.errors import UsageError
    from lts_cli.gallery import entries, find
    from lts_cli.pretrained import pull as run_pull

    if bool(model_ids) == all_models:
        raise UsageError("give gallery ids to pull, or --all (not both)")
    targets = list(entries()) if all_models else [find(ref) for ref in model_ids]
    show(run_pull(targets, repo, revision, dry_run=dry_run, on_note=note), json_out)


@app.command("show")
def show_model(
    model_id: str = typer.Argument(
        ..., metavar="ID", help="Gallery id (gpt2_ and 4 hex digits are enough).", autocompletion=complete.archs
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the entry as JSON."),
) -> None:
    """Show one published architecture in full, with every measurement of it on this machine."""
    from lts_cli.gallery import find, gallery_row
    from lts_cli.store import open_store

    with open_store() as store:
        r = gallery_row(find(model_id), store)
    if json_out:
        print_json(r.to_dict(all_measurements=True))
        return
    for block in r.view():
        draw(block)
