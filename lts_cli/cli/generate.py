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
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads [all cores]."),
    allow_untrained: bool = typer.Option(
        False, "--allow-untrained", help="Use random weights for an untrained architecture."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print prompt, texts and timing as JSON instead of streaming."),
) -> None:
    """Generate text with transformers' generate() and its KV cache; sampling by default."""
    from lts_cli.config import replace
    from lts_cli.generation import GenerateConfig, load
    from lts_cli.generation import generate as run_generate

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
    )
    if threads:
        import torch

        torch.set_num_threads(threads)
    loaded = load(model_id, allow_untrained=allow_untrained)
    if loaded.source == "untrained":
        note(f"{loaded.label}: the text below is noise from an untrained model")
    stream = not json_out and cfg.num_return_sequences == 1

    def on_text(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

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
    note(
        f"{result['new_tokens']} tokens in {result['seconds']:.2f} s "
        f"({result['tokens_per_s']:.1f} tokens/s), {loaded.label}"
    )
