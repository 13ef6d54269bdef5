"""`lts profile`: measure one architecture on this machine, beside its published figures."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from lts_cli import objectives as registry
from lts_cli.cli import complete
from lts_cli.cli.common import (
    ExecutorChoice,
    GraphChoice,
    OptLevel,
    default,
    err,
    executor_options,
    fmt_params,
    fmt_s,
    note,
    objective_cell,
    out,
    print_json,
    stage_progress,
    value,
)
from lts_cli.config import MeasureSettings
from lts_cli.errors import UsageError


def _d(field: str) -> str:
    return default(MeasureSettings, field)


_EXECUTOR = executor_options()


def profile(
    ref: Optional[str] = typer.Argument(
        None,
        metavar="[ID|FILE|EXPORT]",
        help="Gallery id, workspace model or archid (gpt2_ + 4 hex digits is enough), arch .json/.yaml, "
        "model or `lts export` folder, or Hub id such as gpt2.",
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
    objectives: Optional[str] = typer.Option(
        None,
        "--objectives",
        metavar="LIST",
        help=f"Comma-separated objectives to show, from: {', '.join(registry.REGISTRY)}.",
        show_default="all",
    ),
    decode_context: Optional[int] = typer.Option(
        None, "--decode-context", help="Tokens in the KV cache for decode_latency.", show_default=_d("decode_context")
    ),
    predict: bool = typer.Option(
        False, "--predict", help="Predict the latencies with this machine's latency model instead of measuring."
    ),
    revision: Optional[str] = typer.Option(
        None, "--revision", help="A Hub model's branch, tag or commit.", show_default="main"
    ),
    executor: ExecutorChoice = _EXECUTOR["executor"],
    ray_address: Optional[str] = _EXECUTOR["ray_address"],
    ray_target: Optional[str] = _EXECUTOR["target"],
    no_cache: bool = typer.Option(False, "--no-cache", help="Measure again even if this machine has a cached result."),
    json_out: bool = typer.Option(False, "--json", help="Print the measurement as JSON."),
) -> None:
    """Every objective of one architecture on this machine (or prefill and per-token decode latency
    of an `lts export` folder): exact ones computed, measured ones cached per machine and settings."""
    from lts_cli.config import load_config
    from lts_cli.evaluation import Evaluation, profile_objectives
    from lts_cli.evaluation import profile as run_profile
    from lts_cli.gallery import Resolved, entry_for
    from lts_cli.references import architecture
    from lts_cli.runtime import is_export
    from lts_cli.space import parse_arch_spec
    from lts_cli.store import open_store

    remote = executor is ExecutorChoice.ray
    if not remote and (ray_address or ray_target):
        raise UsageError(f"{'--ray-address' if ray_address else '--target'} goes with --executor ray")
    if remote and predict:
        raise UsageError("--predict uses this machine's latency model; drop --executor ray")
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
        decode_context=decode_context,
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
            target = architecture(ref, store, revision=revision)
        for message in target.notes:
            note(message)

    requested = registry.parse(objectives) if objectives is not None else None
    chosen, left_out = profile_objectives(target.arch, settings, requested)
    if left_out:
        note(left_out)
    if predict:
        _predict(target, settings, chosen, json_out)
        return
    result: Evaluation
    if remote:
        from lts_cli.distributed import profile as remote_profile

        result = remote_profile(target.arch, settings, chosen, not no_cache, ray_address, ray_target, on_note=note)
        if result.host != "cache":
            note(f"measured on {result.host}")
    else:
        with stage_progress(target.label[:18]) as progress:
            result = run_profile(target.arch, settings, chosen, use_cache=not no_cache, progress=progress)
    published = target.entry.published() if target.entry else None
    p, d = result.prefill, result.decode
    for m in (x for x in (p, d) if x is not None and x.cached):
        note(f"{m.kind}: cached from {m.measured_at} (same arch, settings and machine); --no-cache measures again")
    if published and p is not None and settings.seq_len != published["latency_seq_len"]:
        seq = published["latency_seq_len"]
        like = f"lts profile {shlex.quote(target.label)} --seq-len {seq}"
        note(f"the published latency was measured at seq {seq}; `{like}` compares like with like")
    if json_out:
        print_json(
            {
                "label": target.label,
                "archid": target.arch.archid,
                "arch": target.arch.to_dict(),
                "objectives": {name: result.values[name] for name in chosen},
                "kinds": {name: registry.get(name).kind for name in chosen},
                "cached": result.cached,
                "prefill": p.to_dict() if p else None,
                "decode": d.to_dict() if d else None,
                "latency_statistic": "median of timed runs",
                "published": published,
            }
        )
        return
    _print_profile(target, settings, chosen, result, published)


def _predict(target: Any, settings: MeasureSettings, chosen: list[str], json_out: bool) -> None:
    """Exact objectives computed, latencies predicted (never stored as measurements)."""
    from lts_cli.errors import TooFewMeasurements
    from lts_cli.evaluation import predictions

    result = predictions(target.arch, settings, chosen)
    latencies = [name for name in chosen if name in registry.PREDICTABLE]
    if latencies and not result["predicted"]:
        raise TooFewMeasurements(result["missing"][latencies[0]])
    for name, why in result["missing"].items():
        note(f"{name}: {why}")
    if json_out:
        print_json({"label": target.label, "archid": target.arch.archid, **result})
        return
    out.print(f"[bold]{target.label}[/]  {target.arch.short()}", highlight=False)
    table = Table(box=None, pad_edge=False)
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_column("", justify="left")
    for name in chosen:
        if name in result["exact"]:
            table.add_row(registry.get(name).label, objective_cell(name, result["exact"][name]), "exact")
        elif name in result["predicted"]:
            p = result["predicted"][name]
            err = p["expected_error"]
            how = (
                f"predicted: expected error {err['median']:.1%} median, {err['p90']:.1%} p90 out of sample; "
                f"fitted on {p['n']} measurements"
            )
            table.add_row(registry.get(name).label, objective_cell(name, p["value"]), how)
    out.print(table)


def _print_profile(target: Any, settings: MeasureSettings, chosen: list[str], result: Any, published: Any) -> None:
    a, v, p, d = target.arch, result.values, result.prefill, result.decode
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
    rows: dict[str, tuple[str, str, str]] = {
        "non_embedding_params": (
            "non-embedding params",
            f"{fmt_params(int(v['non_embedding_params']))} ({int(v['non_embedding_params']):,})",
            f"{pub['non_embedding_params_m']:.2f}M" if pub else "-",
        ),
        "total_params": ("total params (tied head once)", f"{fmt_params(a.unique_params)} ({a.unique_params:,})", ""),
        "onnx_memory": (
            "ONNX memory, MiB (file size)", f"{v['onnx_memory']:.2f}", f"{pub['memory_mib']:.2f}" if pub else "-"
        ),
        "onnx_memory_int8": ("ONNX memory int8, MiB (file size)", f"{v.get('onnx_memory_int8', 0):.2f}", ""),
    }  # fmt: skip
    for name in chosen:
        if name in rows:
            table.add_row(*rows[name])
    if p is not None:
        table.add_row(
            f"ONNX latency, s (median, seq {settings.seq_len})",
            fmt_s(p.latency_s),
            f"{pub['latency_s']:.3f} (seq {pub['latency_seq_len']})" if pub else "-",
        )
        _timing_rows(table, p)
        table.add_row("peak RSS while running, MiB", f"{p.peak_rss_mib:.0f}", "")
    if d is not None:
        table.add_row(
            f"decode latency per token, ms (median, context {settings.decode_context})", f"{1000 * d.latency_s:.2f}", ""
        )
        _timing_rows(table, d)
    out.print(table)
    measured = p or d
    if measured is not None:
        fp = measured.fingerprint
        err.print(
            f"[dim]{settings.describe()}; {fp['cpu']}, {fp['cores']} cores, onnxruntime {fp['onnxruntime']}, "
            f"{settings.provider}; load {measured.load_avg:.2f}[/]",
            highlight=False,
            soft_wrap=True,
        )


def _timing_rows(table: Table, m: Any) -> None:
    ci = f"±{m.latency_ci95_rel:.1%}" if m.latency_ci95_rel is not None else "-"
    scale, unit = (1000, "ms") if m.kind == "decode" else (1, "s")
    mean = f"{scale * m.latency_mean_s:.2f}" if m.kind == "decode" else fmt_s(m.latency_mean_s)
    table.add_row(f"  mean ({unit}) / CV / 95% CI of mean", f"{mean} / {m.latency_cv:.1%} / {ci}", "")
    table.add_row(
        "  timed runs; build / session / timing, s",
        f"{m.runs} ({m.stop}); {m.build_s:.2f} / {m.session_s:.2f} / {m.timing_s:.2f}",
        "",
    )


def _profile_export(folder: Path, settings: Any, json_out: bool) -> None:
    from lts_cli.profiling import profile_export

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
