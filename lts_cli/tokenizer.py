"""Tokenizers: the GPT-2 byte-level BPE tokenizer shipped in the package, and the tokenizer that goes
with a model folder or repository (its own when transformers can load it, GPT-2 BPE built from its
vocab.json and merges.txt when only those are there, else the shipped one), checked before use."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

from lts_cli.errors import LtsError

TOKENIZER_DIR = "data/gpt2-tokenizer"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json")
SHIPPED = "lts's GPT-2 tokenizer"
OWN = "its own tokenizer files"
KNOWN_TEXT = "Hello world"


@functools.cache
def shipped() -> Any:
    """The GPT-2 byte-level BPE tokenizer shipped in the package (50257 tokens; no network).

    Loaded with `from_pretrained(folder)`: in transformers 5 (where GPT2TokenizerFast is an alias of
    the tokenizers-backed GPT2Tokenizer), `GPT2TokenizerFast(vocab_file=..., merges_file=...)`
    silently builds an empty tokenizer (tests/test_data.py pins the known answer).
    """
    from transformers import GPT2Tokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()
    with resources.as_file(resources.files("lts_cli").joinpath(TOKENIZER_DIR)) as folder:
        tok = GPT2Tokenizer.from_pretrained(str(folder))
    tok.model_max_length = 10**9  # we pack blocks ourselves; silence the length warning
    return tok


def load_tokenizer(folder: Path | None, vocab_size: int) -> tuple[Any, str]:
    """The tokenizer for a model of `vocab_size` tokens whose tokenizer files are in `folder` (None:
    there are none), and how it was made, for the user: the folder's own (what transformers loads),
    GPT-2 BPE built from its vocab.json and merges.txt, or the shipped one. Each is checked: it
    encodes text into ids the model has (transformers can build an empty tokenizer without a word)."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    present = {name for name in TOKENIZER_FILES if folder is not None and (folder / name).is_file()}
    tries: list[tuple[str, Any]] = []
    if present:
        tries.append((OWN, transformers.AutoTokenizer))
    if {"vocab.json", "merges.txt"} <= present:
        tries.append(("GPT-2 BPE built from its vocab.json and merges.txt", transformers.GPT2Tokenizer))
    problems = []
    for how, loader in tries:
        try:
            tok = loader.from_pretrained(folder)
        except Exception as exc:  # transformers raises ValueError, OSError, ... for files it cannot use
            problems.append(f"{how}: {type(exc).__name__}")
            continue
        problem = _unusable(tok, vocab_size)
        if problem is None:
            return tok, how
        problems.append(f"{how}: {problem}")
    tok = shipped()
    problem = _unusable(tok, vocab_size)
    if problem is not None:
        tried = f" (tried {'; '.join(problems)})" if problems else ""
        raise LtsError(f"no tokenizer fits this model's {vocab_size} tokens{tried}; {SHIPPED}: {problem}")
    why = "its tokenizer files cannot be used" if present else "it has no tokenizer files"
    return tok, f"{SHIPPED} ({why})"


def _unusable(tok: Any, vocab_size: int) -> str | None:
    if len(tok) > vocab_size:
        return f"{len(tok)} tokens, more than the model's {vocab_size}"
    ids = tok(KNOWN_TEXT, add_special_tokens=False)["input_ids"]
    if not ids or max(ids) >= vocab_size:
        return "it does not encode text into the model's token ids"
    return None
