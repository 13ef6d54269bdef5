"""`lts profile`: measure one architecture on this machine, beside its published figures."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from lts_cli.cli import complete
from lts_cli.cli.common import (
    GraphChoice,
    OptLevel,
    default,
    err,
    fmt_params,
    fmt_s,
    note,
    out,
    print_json,
    stage_progress,
    value,
)
from lts_cli.config import MeasureSettings
from lts_cli.errors import UsageError


def _d(field: str) -> str:
    return default(MeasureSettings, field)


def profile(
    ref: Optional[str] = typer.Argument(
        None,
        metavar="[ID|FILE|EXPORT]",
        help="Gallery id, workspace archid (a unique prefix is enough), arch .json/.yaml, or `lts export` folder.",
        autocompletion=complete.archs,
    ),
    arch_spec: Optional[str] = typer.Option(
        None,
        "--arch",
        help="Inline architecture: n_layer=4,d_model=128,d_inner=768,n_head=4 (vocab_size, n_positions optional).",
        show_default=False,
    ),
    config: Optional[Path] = typer.Option(
        None, "--config", help="YAML/JSON of measurement settings (configs/profile.yaml).", show_default=False
    ),
    seq_len: Optional[int] = typer.Option(
        None, "--seq-len", help="Sequence length (the gallery was published at 192).", show_default=_d("seq_len")
    ),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Batch size.", show_default=_d("batch_size")),
    trials: Optional[int] = typer.Option(
        None, "--trials", help="Timed runs (the most with --adaptive).", show_default=_d("trials")
    ),
    warmup: Optional[int] = typer.Option(None, "--warmup", help="Untimed warm-up runs.", show_default=_d("warmup")),
    threads: Optional[int] = typer.Option(
        None, "--threads", help="ONNX Runtime intra-op threads.", show_default=_d("threads")
    ),
    graph: Optional[GraphChoice] = typer.Option(
        None,
        "--graph",
        case_sensitive=False,
        help="next-token (published: LM head on the last position + softmax) or logits (the full sequence).",
        show_default=_d("graph"),
    ),
    opt_level: Optional[OptLevel] = typer.Option(
        None, "--opt-level", case_sensitive=False, help="ONNX Runtime graph optimization.", show_default=_d("opt_level")
    ),
    adaptive: Optional[bool] = typer.Option(
        None,
        "--adaptive/--fixed-runs",
        help="Stop once the mean's 95% CI is within --target-ci (after --min-trials).",
        show_default="fixed-runs",
    ),
    min_trials: Optional[int] = typer.Option(
        None, "--min-trials", help="Runs before --adaptive may stop.", show_default=_d("min_trials")
    ),
    target_ci: Optional[float] = typer.Option(
        None, "--target-ci", help="Relative CI half-width for --adaptive.", show_default=_d("target_ci")
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Measure again even if this machine has a cached result."),
    json_out: bool = typer.Option(False, "--json", help="Print the measurement as JSON."),
) -> None:
    """Measure non-embedding params, ONNX latency and ONNX memory of one architecture on this machine
    (or prefill and per-token decode latency of an `lts export` folder)."""
    from lts_cli.config import load_config
    from lts_cli.evaluation import profile as run_profile
    from lts_cli.gallery import Resolved, entry_for, resolve
    from lts_cli.runtime import is_export
    from lts_cli.space import parse_arch_spec
    from lts_cli.store import open_store

    if (ref is None) == (arch_spec is None):
        raise UsageError(
            "give an architecture: an ID or FILE, or --arch n_layer=..,d_model=..,d_inner=..,n_head=.. (not both)"
        )
    settings = load_config(
        MeasureSettings,
        config,
        seq_len=seq_len,
        batch_size=batch_size,
        trials=trials,
        warmup=warmup,
        threads=threads,
        graph=value(graph),
        opt_level=value(opt_level),
        adaptive=adaptive,
        min_trials=min_trials,
        target_ci=target_ci,
    )
    if trials_note := settings.trials_note():
        note(trials_note)
    if ref is not None and is_export(Path(ref)):
        _profile_export(Path(ref), settings, json_out)
        return
    if arch_spec is not None:
        arch = parse_arch_spec(arch_spec)
        target = Resolved(arch, arch.archid, entry_for(arch))
    else:
        assert ref is not None
        with open_store() as store:
            target = resolve(ref, store)

    with stage_progress(target.label[:18]) as progress:
        m = run_profile(target.arch, settings, use_cache=not no_cache, progress=progress)
    published = target.entry.published() if target.entry else None

    if m.cached:
        note(f"cached result from {m.measured_at} (same architecture, settings and machine); --no-cache measures again")
    if published and settings.seq_len != published["latency_seq_len"]:
        seq = published["latency_seq_len"]
        like = f"lts profile {shlex.quote(target.label)} --seq-len {seq}"
        note(f"the published latency was measured at seq {seq}; `{like}` compares like with like")
    if json_out:
        print_json(
            {"label": target.label, **m.to_dict(), "latency_statistic": "median of timed runs", "published": published}
        )
        return

    a = target.arch
    out.print(
        f"[bold]{target.label}[/]  n_layer {a.n_layer}, d_model {a.d_model}, d_inner {a.d_inner}, n_head {a.n_head}"
    )
    if target.label != a.archid:
        out.print(f"archid {a.archid}", highlight=False)
    pub = published or {}
    table = Table(box=None, pad_edge=False)
    table.add_column("")
    table.add_column("this machine", justify="right")
    table.add_column("published", justify="right")
    table.add_row(
        "non-embedding params",
        f"{fmt_params(m.non_embedding_params)} ({m.non_embedding_params:,})",
        f"{pub['non_embedding_params_m']:.2f}M" if pub else "-",
    )
    table.add_row(
        f"ONNX latency, s (median, seq {settings.seq_len})",
        fmt_s(m.latency_s),
        f"{pub['latency_s']:.3f} (seq {pub['latency_seq_len']})" if pub else "-",
    )
    ci = f"±{m.latency_ci95_rel:.1%}" if m.latency_ci95_rel is not None else "-"
    table.add_row("  mean / CV / 95% CI of mean", f"{fmt_s(m.latency_mean_s)} / {m.latency_cv:.1%} / {ci}", "")
    table.add_row("  timed runs", f"{m.runs} ({m.stop})", "")
    table.add_row("ONNX memory, MiB (file size)", f"{m.memory_mib:.2f}", f"{pub['memory_mib']:.2f}" if pub else "-")
    table.add_row("peak RSS while running, MiB", f"{m.peak_rss_mib:.0f}", "")
    table.add_row("build / session / timing, s", f"{m.build_s:.2f} / {m.session_s:.2f} / {m.timing_s:.2f}", "")
    out.print(table)
    fp = m.fingerprint
    err.print(
        f"[dim]{settings.describe()}; {fp['cpu']}, {fp['cores']} cores, onnxruntime {fp['onnxruntime']}, "
        f"{settings.provider}; load {m.load_avg:.2f}[/]",
        highlight=False,
    )


def _profile_export(folder: Path, settings: Any, json_out: bool) -> None:
    from lts_cli.evaluation import profile_export

    with stage_progress(folder.name[:18]) as progress:
        result = profile_export(folder, settings, progress)
    if json_out:
        print_json(result)
        return
    e, p, d = result["export"], result["prefill"], result["decode_per_token"]
    out.print(
        f"[bold]{folder}[/]  {e['graph']}, {e['dtype']}{' (random weights)' if e['untrained'] else ''}", highlight=False
    )
    table = Table(box=None, pad_edge=False)
    table.add_column("")
    table.add_column("this machine", justify="right")
    table.add_row(
        f"prefill latency, s (median, {p['tokens']} tokens)", f"{fmt_s(p['median'])} (CV {p['cv']:.1%}, {p['n']} runs)"
    )
    if d:
        table.add_row(
            f"decode latency per token, ms (median, context {d['context']})",
            f"{1000 * d['median']:.2f} (CV {d['cv']:.1%}, {d['n']} runs)",
        )
    table.add_row("file size, MiB", f"{result['file_mib']:.2f}")
    table.add_row("peak RSS while running, MiB", f"{result['peak_rss_mib']:.0f}")
    out.print(table)
