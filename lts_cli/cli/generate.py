"""`lts generate`: text from a trained model, a model folder or a Hub model, streamed as it is produced."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from lts_cli.cli import complete
from lts_cli.cli.common import Backend, configure, note, option, show
from lts_cli.sampling import GenerateConfig

D = GenerateConfig()


def generate(
    model_id: str = typer.Argument(
        ...,
        metavar="MODEL",
        help="Workspace model, model or export folder, gallery id (gpt2_ + 4 hex digits is enough), "
        "or Hub id such as gpt2.",
        autocompletion=complete.models,
    ),
    prompt: str = typer.Argument("", help="The text to continue (empty: start a new document)."),
    max_new_tokens: Optional[int] = option("--max-new-tokens", "Tokens to generate.", D.max_new_tokens),
    temperature: Optional[float] = option("--temperature", "Sampling temperature.", D.temperature),
    top_p: Optional[float] = option("--top-p", "Nucleus sampling mass.", D.top_p),
    top_k: Optional[int] = option("--top-k", "Sample from the k most likely tokens (0: off).", D.top_k),
    greedy: bool = typer.Option(False, "--greedy", help="Always take the most likely token (no sampling)."),
    seed: Optional[int] = option("--seed", "Random seed: the same seed gives the same text.", "random"),
    num_return_sequences: Optional[int] = option(
        ("--num-return-sequences", "-n"), "Independent samples.", D.num_return_sequences
    ),
    backend: Backend = typer.Option(
        Backend.torch,
        "--backend",
        case_sensitive=False,
        help="torch (transformers' generate) or onnx (ONNX Runtime, exporting the model once if needed).",
    ),
    ignore_eos: bool = typer.Option(False, "--ignore-eos", help="Always generate --max-new-tokens tokens."),
    threads: Optional[int] = option("--threads", "Torch / ONNX Runtime threads.", "all cores", min=1),
    allow_untrained: bool = typer.Option(
        False, "--allow-untrained", help="Use random weights for an untrained architecture."
    ),
    revision: Optional[str] = option("--revision", "A Hub model's branch, tag or commit.", "main"),
    json_out: bool = typer.Option(False, "--json", help="Print prompt, texts and timing as JSON instead of streaming."),
) -> None:
    """Generate text with the KV cache (transformers' generate, or ONNX Runtime); sampling by default."""
    from lts_cli.generation import run

    cfg = configure(
        GenerateConfig,
        None,
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

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    on_text = write if stream else None
    result = run(model_id, prompt, cfg, backend.value, threads or 0, allow_untrained, revision, on_text, note)
    if stream:
        sys.stdout.write("\n")
    show(result, json_out)
