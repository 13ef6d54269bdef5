"""`lts export`: a trained model (or an architecture, with random weights) as a validated ONNX folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lts_cli.cli import complete
from lts_cli.cli.common import Quantize, note, option, out, print_json, stage_progress


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
    info = result.info
    if info["untrained"]:
        note("exported RANDOM weights (untrained architecture): for latency work only")
    if json_out:
        print_json({"path": str(result.path), **info})
        return
    v = info["validation"]
    out.print(f"[bold]{result.path}[/]", highlight=False, soft_wrap=True)
    out.print(
        f"  {info['graph']}, {info['dtype']}, {info['file_bytes'] / 2**20:.2f} MiB, opset {info['opset']}",
        highlight=False,
    )
    diffs = ", ".join(
        f"{k.split('_')[0]} {v[k]:.1e}" for k in ("prefill_max_abs_diff", "decode_max_abs_diff") if k in v
    )
    out.print(
        f"  validated against PyTorch: max |logit diff| {diffs} (largest logit {v['max_abs_logit']:.2f})",
        highlight=False,
        soft_wrap=True,
    )
    if "int8_perplexity" in v:
        out.print(
            f"  perplexity on held-out Shakespeare: fp32 {v['fp32_perplexity']:.2f}, int8 {v['int8_perplexity']:.2f} "
            f"({v['perplexity_increase']:+.1%}; tolerance {v['tolerance']})",
            highlight=False,
        )
    if info["optimized"]:
        fused = ", ".join(f"{op} x{n}" for op, n in info["optimized"]["fused_operators"].items()) or "none"
        out.print(f"  ONNX Runtime fusions: {fused}", highlight=False, soft_wrap=True)
