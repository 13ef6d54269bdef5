"""`lts export`: a trained model (or an architecture, with random weights) as a validated ONNX folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lts_cli.cli import complete
from lts_cli.cli.common import Quantize, note, option, show, stage_progress


def export(
    model_id: str = typer.Argument(
        ...,
        metavar="MODEL",
        help="Workspace model, model folder, gallery id (gpt2_ + 4 hex digits is enough), or Hub id such as gpt2.",
        autocompletion=complete.models,
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Folder to write.", show_default="beside the model: MODEL/onnx"
    ),
    no_past: bool = typer.Option(False, "--no-past", help="The full-sequence graph without the KV cache."),
    quantize: Optional[Quantize] = typer.Option(
        None,
        "--quantize",
        case_sensitive=False,
        help="int8: weights quantized per output channel, activations on the fly.",
        show_default="fp32",
    ),
    optimize: bool = typer.Option(False, "--optimize", help="Apply ONNX Runtime's graph fusions and report them."),
    force: bool = typer.Option(False, "--force", help="Replace an earlier lts export in the output folder."),
    allow_untrained: bool = typer.Option(
        False, "--allow-untrained", help="Export an architecture with random weights (for latency work)."
    ),
    revision: Optional[str] = option("--revision", "A Hub model's branch, tag or commit.", "main"),
    json_out: bool = typer.Option(False, "--json", help="Print export.json."),
) -> None:
    """Export to ONNX (KV cache by default, optimum's layout), validated against PyTorch before it is kept."""
    from lts_cli.exporting import export as run_export

    with stage_progress(model_id[:18]) as progress:
        result = run_export(
            model_id,
            output=output,
            past=not no_past,
            quantize=quantize.value if quantize else None,
            optimize=optimize,
            force=force,
            allow_untrained=allow_untrained,
            on_event=lambda stage: progress(stage, 0, 1),
            on_note=note,
            revision=revision,
        )
    show(result, json_out)
