"""Model files: Arch <-> transformers GPT-2 (the one place our field names map to transformers'), and
loading a model from a workspace id, a folder, an architecture or the Hugging Face Hub (torch)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lts_cli import workspace
from lts_cli.errors import LtsError, NotFound, first_line
from lts_cli.gallery import Resolved
from lts_cli.space import Arch

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
ID_PREFIX = re.compile(r"gpt2_[0-9a-f]{4,40}")
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def gpt2_config(arch: Arch, **overrides: Any) -> Any:
    """A fresh `GPT2Config` for `arch` (tied LM head, GPT-2's gelu_new); `overrides` for training knobs."""
    import transformers

    return transformers.GPT2Config(
        vocab_size=arch.vocab_size,
        n_positions=arch.n_positions,
        n_embd=arch.d_model,
        n_layer=arch.n_layer,
        n_head=arch.n_head,
        n_inner=arch.d_inner,
        tie_word_embeddings=True,
        **overrides,
    )


def arch_from_gpt2_config(config: Any) -> Arch:
    """The Arch of a transformers GPT-2 config (n_inner None means 4 x n_embd, as transformers does)."""
    return Arch(
        n_layer=config.n_layer,
        d_model=config.n_embd,
        d_inner=config.n_inner or 4 * config.n_embd,
        n_head=config.n_head,
        vocab_size=config.vocab_size,
        n_positions=config.n_positions,
    )


def model_id_for(target: Resolved) -> str:
    """Models are named after their architecture: the published id for gallery models, else the archid."""
    return target.entry.id if target.entry else target.arch.archid


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    label: str
    source: str  # workspace | folder | pulled | hub | untrained
    path: Path | None = None


def load(ref: str, allow_untrained: bool = False, on_note: Callable[[str], None] | None = None) -> LoadedModel:
    """A trained workspace model (id or unique prefix), a model folder, an architecture (its model
    trained here, else for a gallery id the published pre-trained one, pulled from the Hub when it
    is not in the Hub cache yet, else random weights with `allow_untrained`), or a Hugging Face Hub
    id, tried in that order. Only "no such thing" moves on to the next kind; any other problem (an
    ambiguous prefix, a broken file, the Hub out of reach) is the answer."""
    from lts_cli import pretrained

    path = Path(ref).expanduser()
    if path.is_dir():
        return _from_folder(path, str(path), "folder")
    found = workspace_model(ref)
    if found is not None:
        return _from_folder(found, found.name, "workspace")
    target = _architecture(ref)
    if target is not None:
        trained = workspace.models_dir() / model_id_for(target)
        if trained.is_dir():
            return _from_folder(trained, trained.name, "workspace")
        entry = target.entry
        pulled = pretrained.registered(entry.id) if entry else None
        if pulled is not None and pretrained.present(pulled):
            return _from_pulled(pulled)
        if entry is not None and not allow_untrained:
            also = "or add --allow-untrained to use random weights"
            return _from_pulled(pretrained.pull(entry, on_note=on_note, alternatives=also))
        if not allow_untrained:
            raise LtsError(
                f"{target.label} is an architecture without a trained model: `lts train {target.label}` first, "
                "or add --allow-untrained to use random weights"
            )
        return _untrained(target.arch, target.label)
    if _HUB_ID.match(ref):
        return _from_hub(ref)
    raise NotFound(f"{ref!r} is not a workspace model, a model folder, a known architecture or a Hugging Face Hub id")


def _from_pulled(pulled: Any) -> LoadedModel:
    """A pre-trained gallery model from the Hub cache, with the tokenizer its pull chose."""
    tokenizer_dir = Path(pulled.tokenizer_path) if pulled.tokenizer_path else None
    return _from_folder(pulled.folder(), pulled.id, "pulled", tokenizer_dir=tokenizer_dir)


def workspace_model(ref: str) -> Path | None:
    """The workspace model folder named `ref`, or the one an id-like prefix (gpt2_ + 4 hex digits) picks."""
    root = workspace.models_dir()
    if (root / ref).is_dir() and not ref.startswith("."):
        return root / ref
    if not ID_PREFIX.fullmatch(ref) or not root.is_dir():
        return None  # only id-like refs match by prefix; `gpt2` stays a Hub id
    matches = [p for p in root.glob(f"{ref}*") if p.is_dir() and not p.name.startswith(".")]
    if len(matches) > 1:
        raise LtsError(
            f"{ref!r} matches {len(matches)} models ({', '.join(p.name for p in matches[:4])}); give more characters"
        )
    return matches[0] if matches else None


def _architecture(ref: str) -> Resolved | None:
    from lts_cli.gallery import resolve
    from lts_cli.store import open_store

    try:
        with open_store() as store:
            return resolve(ref, store)
    except NotFound:
        return None


def _from_folder(folder: Path, label: str, source: str, tokenizer_dir: Path | None = None) -> LoadedModel:
    import transformers

    from lts_cli.runtime import EXPORT_FILE

    if not (folder / "config.json").is_file():
        raise LtsError(f"{folder} is not a model folder: it has no config.json")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        if (folder / EXPORT_FILE).is_file():
            raise LtsError(f"{folder} is an ONNX export without PyTorch weights; generate from it with --backend onnx")
        raise LtsError(f"{folder} has no weights ({' or '.join(WEIGHT_FILES[::2])}); the folder is incomplete")
    quiet(transformers)
    try:
        config = transformers.AutoConfig.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise LtsError(f"{folder}/config.json cannot be read ({first_line(exc)})") from exc
    if (folder / "arch.json").is_file():
        _check_arch(folder, config)
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    except Exception as exc:  # safetensors, torch and transformers raise various types for damaged files
        raise LtsError(
            f"cannot load the weights in {folder} ({type(exc).__name__}: {first_line(exc)}); the file is damaged"
        ) from exc
    return LoadedModel(model.eval(), _tokenizer_for(tokenizer_dir or folder, model), label, source, folder)


def _check_arch(folder: Path, config: Any) -> None:
    from lts_cli.config import load_file

    recorded = Arch.from_config(load_file(folder / "arch.json"), source=str(folder / "arch.json"))
    if getattr(config, "model_type", None) != "gpt2":
        raise LtsError(f"{folder}: arch.json describes a GPT-2 but config.json is a {config.model_type!r} model")
    actual = arch_from_gpt2_config(config)
    if actual != recorded:
        diffs = [
            f"{k} {getattr(recorded, k)} vs {getattr(actual, k)}"
            for k in recorded.to_dict()
            if getattr(recorded, k) != getattr(actual, k)
        ]
        raise LtsError(f"{folder}: config.json does not match arch.json ({', '.join(diffs)})")


def _tokenizer_for(folder: Path, model: Any) -> Any:
    import transformers

    if (folder / "tokenizer.json").is_file() or (folder / "vocab.json").is_file():
        return transformers.AutoTokenizer.from_pretrained(folder)
    from lts_cli.data import tokenizer

    if model.config.vocab_size < len(tokenizer()):
        raise LtsError(f"{folder} has no tokenizer files and its vocabulary does not fit the GPT-2 tokenizer")
    return tokenizer()


def _untrained(arch: Arch, label: str) -> LoadedModel:
    import transformers

    from lts_cli.data import tokenizer

    quiet(transformers)
    model = transformers.GPT2LMHeadModel(gpt2_config(arch, bos_token_id=50256, eos_token_id=50256))
    return LoadedModel(model.eval(), tokenizer(), f"{label} (untrained: random weights)", "untrained")


def _from_hub(ref: str) -> LoadedModel:
    """From the local Hugging Face cache if it has `ref`, else from the Hub after one quick check."""
    import transformers

    from lts_cli.hub import HubUnavailable, check_repo

    quiet(transformers)
    try:
        return _hub_model(transformers, ref, local_only=True)
    except OSError:
        pass
    tried = f"{ref!r} is not a workspace model ({workspace.models_dir()}), a folder or a known architecture"
    try:
        check_repo(ref)
    except HubUnavailable as exc:
        raise LtsError(f"{tried}, nor in the local Hugging Face cache; {exc}") from exc
    except NotFound as exc:
        raise NotFound(f"{tried}, and {exc}") from exc
    try:
        return _hub_model(transformers, ref, local_only=False)
    except OSError as exc:
        raise LtsError(f"could not load {ref!r} from the Hugging Face Hub ({first_line(exc)})") from exc


def _hub_model(transformers: Any, ref: str, local_only: bool) -> LoadedModel:
    model = transformers.AutoModelForCausalLM.from_pretrained(ref, local_files_only=local_only)
    tok = transformers.AutoTokenizer.from_pretrained(ref, local_files_only=local_only)
    return LoadedModel(model.eval(), tok, ref, "hub")


def quiet(transformers: Any) -> None:
    """No progress bars or warnings from transformers on stderr (lts reports its own)."""
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


# ---- the Hub's conventions for model folders ------------------------------------------------------


def generation_defaults(eos_token_id: int, n_positions: int) -> Any:
    """lts's sampling defaults as a transformers GenerationConfig, so that a plain
    `pipeline("text-generation", folder)` samples like `lts generate`. transformers does not stop at
    the end of the context, so a model of fewer than 256 positions gets half its context as new tokens."""
    import transformers

    from lts_cli.config import GenerateConfig

    d = GenerateConfig()
    return transformers.GenerationConfig(
        do_sample=not d.greedy,
        temperature=d.temperature,
        top_p=d.top_p,
        max_new_tokens=min(d.max_new_tokens, n_positions // 2),
        bos_token_id=eos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=eos_token_id,
    )


def save_tokenizer(tokenizer: Any, folder: Path, n_positions: int) -> None:
    """The tokenizer files, saved with `model_max_length` = the model's context (not 10^9)."""
    before = tokenizer.model_max_length
    tokenizer.model_max_length = n_positions
    try:
        tokenizer.save_pretrained(folder)
    finally:
        tokenizer.model_max_length = before


def write_card(folder: Path, title: str, arch: Arch, about: str, facts: list[tuple[str, str]], use: str) -> None:
    """A README.md model card in the Hub's format: metadata, architecture, facts, how to use it."""
    rows = "\n".join(f"| {name} | {value} |" for name, value in facts)
    text = f"""---
library_name: transformers
pipeline_tag: text-generation
tags:
- gpt2
- lts
- lightweight-transformer-search
---

# {title}

{about}

## Architecture

| n_layer | d_model | d_inner | n_head | vocab_size | n_positions | non-embedding params | all params (tied head once) |
|---|---|---|---|---|---|---|---|
| {arch.n_layer} | {arch.d_model} | {arch.d_inner} | {arch.n_head} | {arch.vocab_size} | {arch.n_positions} \
| {arch.non_embedding_params:,} | {arch.unique_params:,} |

Architecture id `{arch.archid}` (`arch.json`, the gallery's config layout).

## Details

| | |
|---|---|
{rows}

## Use

{use}
"""
    workspace.atomic_write_text(folder / "README.md", text)
