"""`lts gallery`: the published architectures next to what lts computes and has measured here."""

from __future__ import annotations

from typing import Any, Optional

import typer

from lts_cli import objectives as registry
from lts_cli.cli import complete
from lts_cli.cli.common import fmt_s, note, option, out, print_json, print_pairs, print_table

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
    from lts_cli.gallery import PUBLISHED_LATENCY_SEQ_LEN, gallery_report
    from lts_cli.runs import front_report

    rows = gallery_report() + (front_report(run) if run is not None else [])
    if json_out:
        print_json([r.to_dict() for r in rows])
        return
    quality, latency, memory = (registry.get(n) for n in registry.DEFAULT)
    table = []
    for r in rows:
        a, here, pub = r.arch, r.preferred(), r.published
        local = r.local
        copies = "".join(flag for flag, on in (("T", local and local.trained), ("P", local and local.pulled)) if on)
        copies += f"E{len(local.exports)}" if local and local.exports else ""
        table.append([
            r.id[:14], f"{a.n_layer}/{a.d_model}/{a.d_inner}/{a.n_head}",
            f"{_pub(quality, pub)}/{quality.format(a.non_embedding_params)}",
            f"{_pub(latency, pub)}/" + (f"{fmt_s(here.latency_s)}@{here.settings['seq_len']}" if here else "-"),
            f"{_pub(memory, pub)}/" + (f"{here.memory_mib:.2f}" if here else f"~{4 * a.unique_params / 2**20:.2f}"),
            copies or "-",
        ])  # fmt: skip
    headers = ["id", "L/d/ff/h", "params M pub/lts", f"latency s pub@{PUBLISHED_LATENCY_SEQ_LEN}/here@seq",
               "memory MiB pub/lts", "local"]  # fmt: skip
    print_table(headers, table, "LTS gallery: published vs. lts on this machine", left=2)
    note(
        "ids are shortened (gpt2_ and 4 hex digits work); '~' memory = 4 bytes x unique parameters, "
        "measured values replace it after `lts profile ID`; local: T trained here, P pre-trained model pulled "
        "(`lts gallery pull ID`), E exports"
    )
    if damaged := sum(r.damaged for r in rows):
        note(f"{damaged} cached measurement(s) could not be read and are left out; `lts cache check` lists them")


def _pub(objective: Any, figures: dict[str, Any] | None) -> str:
    value = objective.published_value(figures)
    return "-" if value is None else f"{value:.3f}" if objective.unit == "s" else objective.format(value)


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
    from lts_cli.pretrained import describe
    from lts_cli.pretrained import pull as run_pull

    if bool(model_ids) == all_models:
        raise UsageError("give gallery ids to pull, or --all (not both)")
    targets = list(entries()) if all_models else [find(ref) for ref in model_ids]
    result = run_pull(targets, repo, revision, dry_run=dry_run, on_note=note)
    if dry_run:
        _print_plan(result, json_out)
    elif json_out:
        print_json([describe(p) for p in result.pulled])
    else:
        for p in result.pulled:
            shape = ", ".join(f"{k} {v}" for k, v in p.architecture().hf_fields().items() if k[0] == "n")
            print_pairs([("checkpoint", f"{p.repo}@{p.revision[:12]} ({p.weights}; {shape})"), ("path", p.path),
                         ("tokenizer", p.tokenizer)], p.id)  # fmt: skip
        if len(result.pulled) == 1:
            first = result.pulled[0].id
            note(f'try `lts generate {first} "ROMEO:"` or `lts export {first} --quantize int8`')


def _print_plan(result: Any, json_out: bool) -> None:
    files = [{"path": f.path, "size_bytes": f.size, "cached": f.cached} for f in result.planned]
    if json_out:
        print_json({"files": files, "download_bytes": result.download_bytes, "free_bytes": result.free_bytes,
                    "cache": result.cache})  # fmt: skip
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
    from lts_cli.store import open_store

    with open_store() as store:
        r = gallery_row(find(model_id), store)
    if json_out:
        print_json(r.to_dict(all_measurements=True))
        return
    a, pub = r.arch, r.published or {}
    pairs = [(key, str(value)) for key, value in a.to_dict().items()]
    pairs += [
        ("non-embedding params", f"{a.non_embedding_params:,} (published {pub['non_embedding_params_m']:.2f}M)"),
        ("unique params (tied head)", f"{a.unique_params:,}"),
        ("published latency", f"{pub['latency_s']:.3f} s at seq {pub['latency_seq_len']}"),
        ("published memory", f"{pub['memory_mib']:.2f} MiB (lts estimate {4 * a.unique_params / 2**20:.2f})"),
    ]
    print_pairs(pairs, r.id + (f"\narchid (lts hash of this config): {a.archid}" if a.archid != r.id else ""))
    if not r.measurements:
        note(
            f"not measured on this machine yet: `lts profile {r.id}` (add --seq-len 192 to match the published latency)"
        )
        return
    rows = []
    for m in r.measurements:
        s = m.settings
        shape = (f"decode {s['batch_size']}x1 after {s['decode_context']}" if m.kind == "decode"
                 else f"{s['graph']} {s['batch_size']}x{s['seq_len']}")  # fmt: skip
        rows.append([m.measured_at[:16].replace("T", " "), f"{shape} t{s['threads']}", fmt_s(m.latency_s),
                     f"{m.latency_cv:.1%}", str(m.runs), f"{m.memory_mib:.2f}", f"{m.peak_rss_mib:.0f}"])  # fmt: skip
    headers = ["when (UTC)", "settings", "latency s", "CV", "runs", "MiB", "peak RSS MiB"]
    print_table(headers, rows, "measured on this machine (latency: median of the timed runs)", left=2)
