"""`lts cache`: the sizes of what lts keeps besides models and runs, and pruning what nothing needs."""

from __future__ import annotations

import typer

from lts_cli.cli.common import confirm, note, print_json, show

app = typer.Typer(help="Measurements, token caches, exports and leftovers: sizes, and pruning.")


@app.callback(invoke_without_command=True)
def cache(ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Show what the workspace caches and what `lts cache prune` would remove."""
    if ctx.invoked_subcommand is not None:
        return
    from lts_cli.inventory import report

    show(report(), json_out)


@app.command("prune")
def prune(
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
    json_out: bool = typer.Option(False, "--json", help="Print what was removed as JSON."),
) -> None:
    """Remove token caches no unfinished training needs, exports whose model is gone, and stale leftovers
    of interrupted writes. Measurements, models and runs are kept."""
    from lts_cli.inventory import report
    from lts_cli.tidying import prune as run_prune

    prunable = report().prunable
    if prunable:
        confirm(f"remove {len(prunable)} cached item(s)", yes)
    removed = run_prune(on_note=note) if prunable else []
    if json_out:
        print_json({"removed": removed})
    note(f"removed {len(removed)}: " + ", ".join(removed) if removed else "nothing to prune")


@app.command("check")
def check(
    repair: bool = typer.Option(False, "--repair", help="Drop the damaged rows and the records lts can rebuild."),
    json_out: bool = typer.Option(False, "--json", help="Print what was found as JSON."),
) -> None:
    """List what lts keeps that does not read: cached measurements, pulled-model records, proxy results,
    search runs."""
    from lts_cli.tidying import check as run_check

    show(run_check(repair), json_out)
