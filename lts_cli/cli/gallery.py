"""`lts gallery`: the published architectures next to what lts computes and has measured here."""

from __future__ import annotations

from typing import Any, Optional

import typer
from rich import box
from rich.table import Table

from lts_cli.cli import complete
from lts_cli.cli.common import fmt_s, note, out, print_json

app = typer.Typer(
    help="The published 20-model gallery: what lts computes and has measured on this machine, and the "
    "pre-trained models (lts gallery pull).",
    no_args_is_help=True,
)


@app.command("list")
def list_models(
    run: Optional[str] = typer.Option(
        None,
        "--run",
        metavar="RUN",
        help="Also list the Pareto members of a search run.",
        show_default=False,
        autocompletion=complete.runs,
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the entries as JSON."),
) -> None:
    """List the published architectures: config, published figures, and this machine's."""
    from lts_cli.gallery import PUBLISHED_LATENCY_SEQ_LEN, gallery_report
    from lts_cli.runs import front_report

    rows = gallery_report() + (front_report(run) if run is not None else [])
    if json_out:
        print_json(rows)
        return
    table = Table(
        title="LTS gallery: published vs. lts on this machine",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1),
        pad_edge=False,
    )
    table.add_column("id", no_wrap=True)
    table.add_column("L/d/ff/h", no_wrap=True)
    table.add_column("params M\npub/lts", justify="right")
    table.add_column(f"latency s\npub@{PUBLISHED_LATENCY_SEQ_LEN}/here@seq", justify="right")
    table.add_column("memory MiB\npub/lts", justify="right")
    table.add_column("local", no_wrap=True)
    for row in rows:
        a, pub, lts = row["arch"], row["published"] or {}, row["lts"]
        local = row.get("local") or {}
        copies = ("T" if local.get("trained") else "") + ("P" if local.get("pulled") else "")
        copies += f"E{len(local['exports'])}" if local.get("exports") else ""
        here = lts["latest_measurement"]
        latency = f"{fmt_s(here['latency_s'])}@{here['settings']['seq_len']}" if here else "-"
        memory = f"{here['memory_mib']:.2f}" if here else f"~{lts['memory_mib_analytic']:.2f}"
        table.add_row(
            row["id"][:12],
            f"{a['n_layer']}/{a['d_model']}/{a['d_inner']}/{a['n_head']}",
            f"{_pub(pub, 'non_embedding_params_m')}/{lts['non_embedding_params'] / 1e6:.2f}",
            f"{_pub(pub, 'latency_s', 3)}/{latency}",
            f"{_pub(pub, 'memory_mib')}/{memory}",
            copies or "-",
        )
    out.print(table)
    note(
        "ids are shortened (gpt2_ and 4 hex digits work); '~' memory = 4 bytes x unique parameters, "
        "measured values replace it after `lts profile ID`; local: T trained here, P pre-trained model pulled "
        "(`lts gallery pull ID`), E exports"
    )


def _pub(published: dict[str, Any], key: str, digits: int = 2) -> str:
    return f"{published[key]:.{digits}f}" if key in published else "-"


@app.command("pull")
def pull(
    model_ids: list[str] = typer.Argument(
        None,
        metavar="[ID]...",
        help="Gallery ids (gpt2_ and 4 hex digits are enough).",
        autocompletion=complete.gallery,
    ),
    all_models: bool = typer.Option(False, "--all", help="All 20 published models (about 8 GB)."),
    repo: Optional[str] = typer.Option(
        None, "--repo", help="The Hub repository (also LTS_GALLERY_REPO).", show_default="microsoft/lts-gpt2-sm"
    ),
    revision: Optional[str] = typer.Option(
        None, "--revision", help="A branch, tag or commit of the repository.", show_default="main"
    ),
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
    from lts_cli.pretrained import describe
    from lts_cli.pretrained import pull as run_pull
    from lts_cli.space import Arch

    if bool(model_ids) == all_models:
        raise UsageError("give gallery ids to pull, or --all (not both)")
    targets = list(entries()) if all_models else [find(ref) for ref in model_ids]
    result = run_pull(targets, repo, revision, dry_run=dry_run, on_note=note)
    if dry_run:
        _print_plan(result, json_out)
        return
    if json_out:
        print_json([describe(p) for p in result.pulled])
        return
    for p in result.pulled:
        fields = Arch(**p.arch).hf_fields() if p.arch else {}
        arch = ", ".join(f"{k} {v}" for k, v in fields.items() if k not in ("vocab_size", "n_positions"))
        out.print(f"{p.id}: {p.repo}@{p.revision[:12]} ({p.weights}; {arch})", highlight=False, soft_wrap=True)
        out.print(f"  {p.path}", highlight=False, soft_wrap=True)
        out.print(f"  tokenizer: {p.tokenizer}", highlight=False, soft_wrap=True)
    if len(result.pulled) == 1:
        first = result.pulled[0].id
        note(f'try `lts generate {first} "ROMEO:"` or `lts export {first} --quantize int8`')


def _print_plan(result: Any, json_out: bool) -> None:
    files = [{"path": f.path, "size_bytes": f.size, "cached": f.cached} for f in result.planned]
    if json_out:
        print_json(
            {"files": files, "download_bytes": result.download_bytes, "free_bytes": result.free_bytes,
             "cache": result.cache}
        )  # fmt: skip
        return
    if not result.planned:
        note("everything asked for is in the Hugging Face cache already: nothing to download")
        return
    for f in result.planned:  # megabytes as the Hub shows them (10^6 bytes)
        size = f"{f.size / 1e6:,.1f} MB" if f.size is not None else "size unknown"
        out.print(f"{f.path}  {size}{'  (cached)' if f.cached else ''}", highlight=False, soft_wrap=True)
    total = f"{result.download_bytes / 1e6:,.1f} MB" if result.download_bytes is not None else "an unknown size"
    note(f"would download {total} into {result.cache} ({result.free_bytes / 1e9:,.1f} GB free)")


@app.command("show")
def show(
    model_id: str = typer.Argument(
        ..., metavar="ID", help="Gallery id (gpt2_ and 4 hex digits are enough).", autocompletion=complete.archs
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the entry as JSON."),
) -> None:
    """Show one published architecture in full, with every measurement of it on this machine."""
    from lts_cli.gallery import find, gallery_row

    row = gallery_row(find(model_id), all_measurements=True)
    if json_out:
        print_json(row)
        return
    a, pub, lts = row["arch"], row["published"], row["lts"]
    out.print(f"[bold]{row['id']}[/]", highlight=False)
    if row["archid"] != row["id"]:
        out.print(f"archid (lts hash of this config): {row['archid']}", highlight=False)
    table = Table(show_header=False, box=None)
    for key in ("n_layer", "d_model", "d_inner", "n_head", "vocab_size", "n_positions"):
        table.add_row(key, str(a[key]))
    table.add_row(
        "non-embedding params", f"{lts['non_embedding_params']:,} (published {pub['non_embedding_params_m']:.2f}M)"
    )
    table.add_row("unique params (tied head)", f"{lts['unique_params']:,}")
    table.add_row("published latency", f"{pub['latency_s']:.3f} s at seq {pub['latency_seq_len']}")
    table.add_row("published memory", f"{pub['memory_mib']:.2f} MiB (lts estimate {lts['memory_mib_analytic']:.2f})")
    out.print(table)
    measured: list[dict[str, Any]] = lts["measurements"]
    if not measured:
        note(
            f"not measured on this machine yet: `lts profile {row['id']}` "
            "(add --seq-len 192 to match the published latency)"
        )
        return
    mt = Table(
        title="measured on this machine",
        caption="settings: graph batch x seq, ONNX Runtime threads; latency: median of the timed runs",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1),
        pad_edge=False,
    )
    for col in ("when (UTC)", "settings", "latency s", "CV", "runs", "MiB", "peak RSS MiB"):
        mt.add_column(col, justify="left" if col in ("when (UTC)", "settings") else "right")
    for m in measured:
        s = m["settings"]
        shape = (
            f"decode {s['batch_size']}x1 after {s['decode_context']}"
            if m.get("kind") == "decode"
            else f"{s['graph']} {s['batch_size']}x{s['seq_len']}"
        )
        mt.add_row(
            m["measured_at"][:16].replace("T", " "),
            f"{shape} t{s['threads']}",
            fmt_s(m["latency_s"]),
            f"{m['latency_cv']:.1%}",
            str(m["runs"]),
            f"{m['memory_mib']:.2f}",
            f"{m['peak_rss_mib']:.0f}",
        )
    out.print(mt)
