"""`lts cache`: the sizes of what lts keeps besides models and runs, and pruning what nothing needs."""

from __future__ import annotations

import typer

from lts_cli.cli.common import confirm, fmt_bytes, note, out, print_json

app = typer.Typer(help="Measurements, token caches, exports and leftovers: sizes, and pruning.")


@app.callback(invoke_without_command=True)
def cache(ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Show what the workspace caches and what `lts cache prune` would remove."""
    if ctx.invoked_subcommand is not None:
        return
    from lts_cli.inventory import report

    r = report()
    if json_out:
        print_json(r)
        return
    m, t, e, left = r["measurements"], r["token_caches"], r["exports"], r["leftovers"]
    out.print(f"workspace {r['workspace']}", highlight=False, soft_wrap=True)
    out.print(f"  measurements   {m['count']:>6}  {fmt_bytes(m['size_bytes']):>10}  (lts.db)", highlight=False)
    out.print(f"  token caches   {len(t):>6}  {fmt_bytes(sum(x['size_bytes'] for x in t)):>10}", highlight=False)
    out.print(f"  exports        {len(e):>6}  {fmt_bytes(sum(x['size_bytes'] for x in e)):>10}", highlight=False)
    out.print(f"  leftovers      {len(left):>6}  {fmt_bytes(sum(x['size_bytes'] for x in left)):>10}", highlight=False)
    if r["prunable"]:
        note(f"`lts cache prune` would remove {len(r['prunable'])}: " + ", ".join(r["prunable"]))
    else:
        note("nothing to prune")


@app.command("prune")
def prune(
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
    json_out: bool = typer.Option(False, "--json", help="Print what was removed as JSON."),
) -> None:
    """Remove token caches no unfinished training needs, exports whose model is gone, and stale leftovers
    of interrupted writes. Measurements, models and runs are kept."""
    from lts_cli.inventory import prune as run_prune
    from lts_cli.inventory import report

    prunable = report()["prunable"]
    if not prunable:
        note("nothing to prune")
        if json_out:
            print_json({"removed": []})
        return
    confirm(f"remove {len(prunable)} cached item(s)", yes)
    removed = run_prune(on_note=note)
    if json_out:
        print_json({"removed": removed})
        return
    note(f"removed {len(removed)}: " + ", ".join(removed))


@app.command("check")
def check(
    repair: bool = typer.Option(False, "--repair", help="Drop the damaged rows and the records lts can rebuild."),
    json_out: bool = typer.Option(False, "--json", help="Print what was found as JSON."),
) -> None:
    """List what lts keeps that does not read: cached measurements, pulled-model records, proxy results,
    search runs."""
    from dataclasses import asdict

    from lts_cli.inventory import check as run_check

    found = run_check(repair)
    if json_out:
        print_json({"damaged": [asdict(p) for p in found], "repaired": repair})
        return
    for p in found:
        note(f"{p.what} {p.where}: {p.problem}" + (f"; {p.repair}" if repair else ""))
    if not found:
        note("everything lts keeps reads")
    elif not repair:
        note("`lts cache check --repair` drops the damaged rows and records lts can rebuild")
