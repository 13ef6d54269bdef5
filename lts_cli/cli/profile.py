"""`lts profile`: measure one architecture on this machine (or a Ray node), beside its published figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from lts_cli import objectives as registry
from lts_cli.cli import complete
from lts_cli.cli.common import (
    EXECUTOR,
    ExecutorChoice,
    configure,
    measure_options,
    note,
    option,
    pick,
    show,
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
    trials_note(settings)
    if ref is not None and arch_spec is None and is_export(Path(ref)):
        with stage_progress(Path(ref).name[:18]) as progress:
            show(profiling.profile_export(Path(ref), settings, progress), json_out)
        return
    chosen = registry.parse(objectives) if objectives is not None else None
    target = profiling.target(ref, arch_spec, revision)
    if predict:
        if given["executor"] is ExecutorChoice.ray:
            raise UsageError("--predict uses this machine's latency model; drop --executor ray")
        show(profiling.predicted(target, settings, chosen), json_out)
        return
    with stage_progress(target.label[:18]) as progress:
        show(profiling.profile(target, settings, chosen, where(given), not no_cache, progress, note), json_out)
