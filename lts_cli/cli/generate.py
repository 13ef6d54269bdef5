"""`lts generate`: text from a trained model, a model folder or a Hub model, streamed as it is produced."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from lts_cli.cli.common import note, print_json


def generate(
    model_id: str = typer.Argument(
        ..., metavar="MODEL", help="Workspace model id (unique prefix), model folder, or Hub id such as gpt2."
    ),
    prompt: str = typer.Argument("", help="The text to continue (empty: start a new document)."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", help="Tokens to generate [128]."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Sampling temperature [0.8]."),
    top_p: Optional[float] = typer.Option(None, "--top-p", help="Nucleus sampling mass [0.95]."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Sample from the k most likely tokens [off]."),
    greedy: bool = typer.Option(False, "--greedy", help="Always take the most likely token (no sampling)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed: the same seed gives the same text."),
    num_return_sequences: Optional[int] = typer.Option(
        None, "--num-return-sequences", "-n", help="Independent samples [1]."
    ),
    backend: str = typer.Option("torch", "--backend", help="torch (transformers generate) or onnx (ONNX Runtime)."),
    ignore_eos: bool = typer.Option(False, "--ignore-eos", help="Always generate --max-new-tokens tokens."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch / ONNX Runtime threads [all cores]."),
    allow_untrained: bool = typer.Option(
        False, "--allow-untrained", help="Use random weights for an untrained architecture."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print prompt, texts and timing as JSON instead of streaming."),
) -> None:
    """Generate text with transformers' generate() and its KV cache; sampling by default."""
    from lts_cli.config import replace
    from lts_cli.errors import UsageError
    from lts_cli.generation import GenerateConfig, generate_onnx, load, onnx_folder
    from lts_cli.generation import generate as run_generate

    if backend not in ("torch", "onnx"):
        raise UsageError(f"--backend must be torch or onnx, not {backend!r}")
    cfg = replace(
        GenerateConfig(),
        "command line",
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        greedy=greedy or None,
        seed=seed,
        num_return_sequences=num_return_sequences,
        stop_at_eos=False if ignore_eos else None,
    )
    stream = not json_out and cfg.num_return_sequences == 1

    def on_text(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    if backend == "onnx":
        folder = onnx_folder(model_id, allow_untrained, on_export=lambda path: note(f"exporting to {path} (once)"))
        label = str(folder)
        if stream:
            sys.stdout.write(prompt)
        result = generate_onnx(folder, prompt, cfg, on_text if stream else None, threads=threads or 0)
    else:
        if threads:
            import torch

            torch.set_num_threads(threads)
        loaded = load(model_id, allow_untrained=allow_untrained)
        label = loaded.label
        if loaded.source == "untrained":
            note(f"{loaded.label}: the text below is noise from an untrained model")
        if stream:
            sys.stdout.write(prompt)
        result = run_generate(loaded, prompt, cfg, on_text if stream else None)
    if json_out:
        print_json(result)
        return
    if stream:
        sys.stdout.write("\n")
    else:
        for i, text in enumerate(result["texts"], 1):
            sys.stdout.write(f"--- sample {i}\n{prompt}{text}\n")
    note(f"{result['new_tokens']} tokens in {result['seconds']:.2f} s ({result['tokens_per_s']:.1f} tokens/s), {label}")
