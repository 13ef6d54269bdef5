"""Models: Arch -> a transformers GPT-2, and loading a model from whatever a reference names (a folder,
a workspace model, an architecture, a pulled gallery model, a Hugging Face Hub repo), with every
weight accounted for (torch)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lts_cli import weights, workspace
from lts_cli.errors import LtsError, NotFound, first_line
from lts_cli.gallery import Resolved
from lts_cli.space import GPT2_EOS_ID, Arch
from lts_cli.tokenizer import TOKENIZER_FILES
from lts_cli.views import JsonObject


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
    """The Arch of a transformers GPT-2 config object (n_inner None means 4 x n_embd)."""
    return Arch.from_hf_config(config.to_dict(), source="config.json")


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
    tokenizer_how: str = ""  # how its tokenizer was made (modeling.load_tokenizer)
    published_as: str | None = None  # the gallery id a pulled checkpoint was published under
    notes: tuple[str, ...] = ()  # what the user should know about it (said once, on stderr)

    @property
    def arch(self) -> Arch | None:
        """Its architecture, for a GPT-2 (None for other model types)."""
        if getattr(self.model.config, "model_type", None) != "gpt2":
            return None
        return arch_from_gpt2_config(self.model.config)

    def describe(self) -> str:
        """The label with what the model is: `gpt2_a9e3... (pulled; L4 d768 ff3072 h12)`."""
        arch = self.arch
        what = arch.short() if arch is not None else getattr(self.model.config, "model_type", "model")
        return f"{self.label} ({self.source}; {what})"


def load(
    ref: str,
    allow_untrained: bool = False,
    on_note: Callable[[str], None] | None = None,
    revision: str | None = None,
) -> LoadedModel:
    """The model `ref` names (references.resolve's order): a model folder, a workspace model, an
    architecture (its model trained here; for a gallery id the published pre-trained one, pulled from
    the Hub when it is not in the Hub cache yet; else random weights with `allow_untrained`), or a
    Hugging Face Hub repo id (`revision`: a branch, tag or commit). Every weight file is checked
    before use: it must fill the model its config.json describes."""
    from lts_cli.gallery import arch_from_file, entry_for
    from lts_cli.references import resolve

    found = resolve(ref)
    if revision is not None and found.kind != "hub":
        raise LtsError(f"--revision is for Hugging Face Hub models; {ref!r} is a {found.kind.replace('path', 'file')}")
    if found.kind == "hub":
        return _from_hub(ref, revision, on_note)
    if found.kind in ("path", "model") and found.path is not None and found.path.is_dir():
        source = "workspace" if found.kind == "model" else "folder"
        return _from_folder(found.path, found.path.name if source == "workspace" else str(found.path), source)
    if found.kind == "path" and found.path is not None:
        arch = arch_from_file(found.path)
        target = Resolved(arch, str(found.path), entry_for(arch))
    else:
        assert found.arch is not None
        target = Resolved(found.arch, found.entry.id if found.entry else found.arch.archid, found.entry)
    return _for_architecture(target, allow_untrained, on_note)


def _for_architecture(target: Resolved, allow_untrained: bool, on_note: Callable[[str], None] | None) -> LoadedModel:
    from lts_cli import pretrained

    trained = workspace.home() / workspace.MODELS / model_id_for(target)
    if trained.is_dir():
        return _from_folder(trained, trained.name, "workspace")
    entry = target.entry
    pulled = pretrained.registered(entry.id) if entry else None
    if pulled is not None and pretrained.present(pulled):
        return _from_pulled(pulled)
    if entry is not None and not allow_untrained:
        also = "or add --allow-untrained to use random weights"
        result = pretrained.pull([entry], on_note=on_note, alternatives=also)
        return _from_pulled(result.pulled[0])
    if not allow_untrained:
        raise LtsError(
            f"{target.label} is an architecture without a trained model: `lts train {target.label}` first, "
            "or add --allow-untrained to use random weights"
        )
    return _untrained(target.arch, target.label)


def _from_pulled(pulled: Any) -> LoadedModel:
    """A pre-trained gallery model from the Hub cache, with the tokenizer its repository has."""
    tokenizer_dir = Path(pulled.tokenizer_path) if pulled.tokenizer_path else None
    loaded = _from_folder(pulled.folder(), pulled.id, "pulled", tokenizer_dir=tokenizer_dir)
    loaded.published_as = pulled.id
    return loaded


def workspace_model(ref: str) -> Path | None:
    """The workspace model folder `ref` names (its name, or a unique id prefix), if any."""
    from lts_cli.references import model_folders, unique

    name = unique(ref, model_folders(), "workspace models")
    return workspace.home() / workspace.MODELS / name if name is not None else None


def _from_folder(folder: Path, label: str, source: str, tokenizer_dir: Path | None = None) -> LoadedModel:
    import transformers

    from lts_cli.runtime import EXPORT_FILE
    from lts_cli.tokenizer import load_tokenizer

    config_path = folder / "config.json"
    if not config_path.is_file():
        if (folder / EXPORT_FILE).is_file():
            raise LtsError(f"{folder} is an ONNX export without PyTorch weights; generate from it with --backend onnx")
        raise LtsError(f"{folder} is not a model folder: it has no config.json")
    weight_file = weights.weight_file(folder)
    if weight_file is None:
        if (folder / EXPORT_FILE).is_file():
            raise LtsError(f"{folder} is an ONNX export without PyTorch weights; generate from it with --backend onnx")
        raise LtsError(f"{folder} has no weights ({', '.join(weights.WEIGHT_FILES)}); the folder is incomplete")
    config = _read_config(config_path)
    if config.get("model_type") == "gpt2":
        arch = Arch.from_hf_config(config, source=str(config_path))
        if (folder / workspace.ARCH_FILE).is_file():
            _check_arch(folder, arch)
        weights.check_gpt2(weight_file, arch)
    quiet(transformers)
    model = _load_weights(transformers, folder, weight_file)
    tok, how = load_tokenizer(_tokenizer_folder(tokenizer_dir or folder), model.config.vocab_size)
    return LoadedModel(model.eval(), tok, label, source, folder, tokenizer_how=how)


def _read_config(path: Path) -> JsonObject:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LtsError(f"{path} cannot be read ({first_line(exc)})") from exc
    if not isinstance(config, dict):
        raise LtsError(f"{path} is not a JSON object")
    return config


def _load_weights(transformers: Any, folder: Path, weight_file: Path) -> Any:
    """transformers' model for `folder`, refused unless every weight was in the file (transformers only
    logs what it initialised at random) and nothing but old GPT-2 buffers was left over."""
    import pickle

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's weights-only notes; lts says what went wrong itself
            model, info = transformers.AutoModelForCausalLM.from_pretrained(folder, output_loading_info=True)
    except pickle.UnpicklingError as exc:
        raise LtsError(
            f"{weight_file} holds Python objects other than tensors; lts loads only weights "
            "(safetensors, or a weights-only .bin)"
        ) from exc
    except Exception as exc:  # safetensors, torch and transformers raise various types for damaged files
        raise LtsError(
            f"cannot load the weights in {folder} ({type(exc).__name__}: {first_line(exc)}); the file is damaged"
        ) from exc
    missing = sorted(info.get("missing_keys") or [])
    unexpected = sorted(k for k in info.get("unexpected_keys") or [] if not k.endswith(weights.LEGACY_BUFFERS))
    mismatched = sorted(info.get("mismatched_keys") or [])  # transformers 5: sets of (key, file shape, model shape)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise LtsError(f"{weight_file.name} in {folder} has no weights for {shown}; the model would be partly random")
    if mismatched:
        raise LtsError(f"{weight_file.name} in {folder}: {mismatched[0][0]} has another shape than config.json says")
    if unexpected:
        raise LtsError(
            f"{weight_file.name} in {folder} holds tensors the model does not have: {', '.join(unexpected[:3])}"
        )
    return model


def _tokenizer_folder(folder: Path) -> Path | None:
    from lts_cli.tokenizer import TOKENIZER_FILES

    return folder if any((folder / name).is_file() for name in TOKENIZER_FILES) else None


def _check_arch(folder: Path, actual: Arch) -> None:
    from lts_cli.config import load_file

    recorded = Arch.from_config(load_file(folder / workspace.ARCH_FILE), source=str(folder / workspace.ARCH_FILE))
    if actual != recorded:
        diffs = [
            f"{k} {getattr(recorded, k)} vs {getattr(actual, k)}"
            for k in recorded.to_dict()
            if getattr(recorded, k) != getattr(actual, k)
        ]
        raise LtsError(f"{folder}: config.json does not match arch.json ({', '.join(diffs)})")


def _untrained(arch: Arch, label: str) -> LoadedModel:
    import transformers

    from lts_cli.tokenizer import SHIPPED, shipped

    quiet(transformers)
    model = transformers.GPT2LMHeadModel(gpt2_config(arch, bos_token_id=GPT2_EOS_ID, eos_token_id=GPT2_EOS_ID))
    return LoadedModel(
        model.eval(), shipped(), f"{label} (untrained: random weights)", "untrained", tokenizer_how=SHIPPED
    )


HUB_FILES = ["config.json", "generation_config.json", "model*.safetensors", "model.safetensors.index.json"]
HUB_PICKLES = ["pytorch_model*.bin", "pytorch_model.bin.index.json"]


def _from_hub(ref: str, revision: str | None, on_note: Callable[[str], None] | None) -> LoadedModel:
    """From the local Hugging Face cache if it holds `ref` with weights, else downloaded after one
    quick check: its config, tokenizer and safetensors weights (its pickled .bin only if it has none)."""
    from lts_cli import hub

    every = [*HUB_FILES, *HUB_PICKLES, *TOKENIZER_FILES]
    snapshot = hub.snapshot(ref, revision, every, local_only=True)
    if snapshot is None or weights.weight_file(snapshot) is None or not (snapshot / "config.json").is_file():
        tried = f"{ref!r} is not a file or folder, a workspace model, a gallery id or a known architecture"
        if hub.offline():
            raise LtsError(
                f"{tried}, nor in the local Hugging Face cache {hub.cache_dir()} "
                "(HF_HUB_OFFLINE is set, so the Hub was not asked)"
            )
        try:
            planned = hub.plan(ref, revision, every)
        except hub.HubUnavailable as exc:
            raise LtsError(f"{tried}, nor in the local Hugging Face cache; {exc}") from exc
        except NotFound as exc:
            raise NotFound(f"{tried}, and {exc}") from exc
        if any(f.path.endswith(".safetensors") for f in planned):
            every = [*HUB_FILES, *TOKENIZER_FILES]
            planned = [f for f in planned if not f.path.endswith(".bin") and "pytorch_model" not in f.path]
        size = sum(f.size or 0 for f in planned if not f.cached)
        if on_note:
            on_note(f"downloading {ref} ({size / 1e6:,.0f} MB) from the Hugging Face Hub into {hub.cache_dir()}")
        snapshot = hub.snapshot(ref, revision, every, local_only=False)
        assert snapshot is not None
    return _from_folder(snapshot, ref, "hub")


def quiet(transformers: Any) -> None:
    """No progress bars or warnings from transformers on stderr (lts reports its own)."""
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


# ---- the Hub's conventions for model folders ------------------------------------------------------


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
