"""`lts profile`: measure one architecture on this machine (or a Ray node), beside its published figures."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Optional

import typer

from lts_cli import objectives as registry
from lts_cli.cli import complete
from lts_cli.cli.common import (
    EXECUTOR,
    ExecutorChoice,
    configure,
    err,
    fmt_s,
    measure_options,
    note,
    option,
    pick,
    print_json,
    print_pairs,
    stage_progress,
    trials_note,
    where,
    with_options,
)
from lts_cli.settings import MeasureSettings

MEASURE = measure_options(MeasureSettings())


@with_options(MEASURE, EXECUTOR)
def profile(
    ref: Optional[str] = typer.Argument(
        None,
        metavar="[ID|FILE|FOLDER]",
        help="Gallery id, workspace model or archid (gpt2_ + 4 hex digits is enough), arch .json/.yaml, "
        "model or `lts export` folder, or Hub id such as gpt2.",
        autocompletion=complete.archs,
    ),
    arch_spec: Optional[str] = option("--arch", "Inline architecture: n_layer=4,d_model=128,d_inner=768,n_head=4."),
    config: Optional[Path] = option("--config", "YAML/JSON measurement settings (configs/profile.yaml)."),
    objectives: Optional[str] = option("--objectives", f"From: {', '.join(registry.REGISTRY)}.", "all", metavar="LIST"),
    predict: bool = typer.Option(False, "--predict", help="Predict the latencies with this machine's model instead."),
    revision: Optional[str] = option("--revision", "A Hub model's branch, tag or commit.", "main"),
    no_cache: bool = typer.Option(False, "--no-cache", help="Measure again even if this machine has a cached result."),
    json_out: bool = typer.Option(False, "--json", help="Print the measurement as JSON."),
    **given: Any,
) -> None:
    """Every objective of one architecture on this machine (or prefill and per-token decode latency
    of an `lts export` folder): exact ones computed, measured ones cached per machine and settings."""
    from lts_cli import profiling
    from lts_cli.errors import UsageError
    from lts_cli.runtime import is_export

    settings = configure(MeasureSettings, config, **pick(given, MEASURE))
    if (ref is None) == (arch_spec is None):
        raise UsageError(
            "give an architecture: an ID or FILE, or --arch n_layer=..,d_model=..,d_inner=..,n_head=.. (not both)"
        )
    trials_note(settings)
    if ref is not None and is_export(Path(ref)):
        with stage_progress(Path(ref).name[:18]) as progress:
            _print_export(profiling.profile_export(Path(ref), settings, progress), json_out)
        return
    chosen = registry.parse(objectives) if objectives is not None else None
    target = _target(ref, arch_spec, revision)
    if predict:
        if given["executor"] is ExecutorChoice.ray:
            raise UsageError("--predict uses this machine's latency model; drop --executor ray")
        _print_prediction(target, settings, chosen, json_out)
        return
    with stage_progress(target.label[:18]) as progress:
        result = profiling.profile(target, settings, chosen, where(given), not no_cache, progress, note)
    _print_profile(result, json_out)


def _target(ref: str | None, arch_spec: str | None, revision: str | None) -> Any:
    from lts_cli.gallery import Resolved, entry_for
    from lts_cli.references import architecture
    from lts_cli.space import parse_arch_spec

    if arch_spec is not None:
        arch = parse_arch_spec(arch_spec)
        return Resolved(arch, arch.archid, entry_for(arch))
    assert ref is not None
    return architecture(ref, revision=revision)


def _print_profile(r: Any, json_out: bool) -> None:
    figures = r.entry.published() if r.entry else None
    for m in (x for x in (r.prefill, r.decode) if x is not None and x.cached):
        note(f"{m.kind}: cached from {m.measured_at} (same arch, settings and machine); --no-cache measures again")
    if r.host not in ("cache", "here"):
        note(f"measured on {r.host}")
    if figures and r.prefill is not None and r.settings.seq_len != figures["latency_seq_len"]:
        like = f"lts profile {shlex.quote(r.label)} --seq-len {figures['latency_seq_len']}"
        note(
            f"the published latency was measured at seq {figures['latency_seq_len']}; `{like}` compares like with like"
        )
    if json_out:
        print_json(r.to_dict())
        return
    rows = []
    for name in r.objectives:
        o = registry.get(name)
        value = o.format(r.values[name]) + (f" ({int(r.values[name]):,})" if o.unit == "params" else "")
        published = o.published_value(figures)
        rows.append((f"{o.label}", value + (f"   published {o.format(published)}" if published is not None else "")))
    for m in (x for x in (r.prefill, r.decode) if x is not None):
        ci = f"±{m.latency_ci95_rel:.1%}" if m.latency_ci95_rel is not None else "-"
        rows.append((f"  {m.kind}: mean / CV / 95% CI", f"{fmt_s(m.latency_mean_s)} s / {m.latency_cv:.1%} / {ci}"))
        rows.append((f"  {m.kind}: timed runs; build / session / timing s",
                     f"{m.runs} ({m.stop}); {m.build_s:.2f} / {m.session_s:.2f} / {m.timing_s:.2f}"))  # fmt: skip
    a = r.arch
    title = f"{r.label}  n_layer {a.n_layer}, d_model {a.d_model}, d_inner {a.d_inner}, n_head {a.n_head}"
    print_pairs(rows, title + (f"\narchid {a.archid}" if r.label != a.archid else ""))
    measured = r.prefill or r.decode
    if measured is not None:
        fp = measured.fingerprint
        err.print(
            f"[dim]{r.settings.describe()}; {fp['cpu']}, {fp['cores']} cores, onnxruntime {fp['onnxruntime']}; "
            f"load {measured.load_avg:.2f}[/]",
            highlight=False,
            soft_wrap=True,
        )


def _print_prediction(target: Any, settings: MeasureSettings, chosen: Any, json_out: bool) -> None:
    """Exact objectives computed, latencies predicted (never stored as measurements)."""
    from lts_cli.errors import TooFewMeasurements
    from lts_cli.predictor import predict

    names, _ = registry.fitting(target.arch, settings, chosen)
    p = predict(target.arch, settings, names)
    latencies = [name for name in names if registry.get(name).predictable]
    if latencies and not p.predicted:
        raise TooFewMeasurements(p.missing[latencies[0]])
    for name, why in p.missing.items():
        note(f"{name}: {why}")
    if json_out:
        predicted = {k: {"value": v, "source": "predicted", **m.to_dict()} for k, (v, m) in p.predicted.items()}
        print_json({"label": target.label, "archid": target.arch.archid, "exact": p.exact, "predicted": predicted,
                    "missing": p.missing})  # fmt: skip
        return
    rows = [(registry.get(n).label, f"{registry.get(n).format(p.exact[n])} (exact)") for n in names if n in p.exact]
    for name, (value, model) in p.predicted.items():
        e = model.expected
        how = f"predicted; expected error {e.median:.1%} median, {e.p90:.1%} p90 out of sample; fitted on {model.n}"
        rows.append((registry.get(name).label, f"{registry.get(name).format(value)} ({how})"))
    print_pairs(rows, f"{target.label}  {target.arch.short()}")


def _print_export(p: Any, json_out: bool) -> None:
    if json_out:
        print_json(p.to_dict())
        return
    rows = [(f"prefill latency, s (median, {p.prefill.tokens} tokens)",
             f"{fmt_s(p.prefill.stats.median)} (CV {p.prefill.stats.cv:.1%}, {p.prefill.stats.n} runs)")]  # fmt: skip
    if p.decode:
        d = p.decode
        rows.append((f"decode latency per token, ms (median, context {d.tokens})",
                     f"{1000 * d.stats.median:.2f} (CV {d.stats.cv:.1%}, {d.stats.n} runs)"))  # fmt: skip
    rows += [("file size, MiB", f"{p.file_mib:.2f}"), ("peak RSS while running, MiB", f"{p.peak_rss_mib:.0f}")]
    print_pairs(rows, f"{p.folder}  {p.graph}, {p.dtype}{' (random weights)' if p.untrained else ''}")
