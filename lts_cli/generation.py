"""Text generation with transformers' `generate()` and its KV cache, streamed token by token (torch)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from transformers import TextStreamer

from lts_cli import workspace
from lts_cli.data import hub_reachable
from lts_cli.errors import LtsError
from lts_cli.space import Arch

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
ID_PREFIX = re.compile(r"gpt2_[0-9a-f]{4,40}")
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


@dataclass(frozen=True)
class GenerateConfig:
    """Published defaults: sampling with temperature 0.8 and top-p 0.95, 128 new tokens."""

    max_new_tokens: int = 128
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 0  # 0: off
    greedy: bool = False
    seed: int | None = None
    num_return_sequences: int = 1
    stop_at_eos: bool = True  # False: always generate max_new_tokens (benchmarks)

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.num_return_sequences < 1:
            raise LtsError("--max-new-tokens and --num-return-sequences must be at least 1")
        if self.temperature <= 0 or not 0 < self.top_p <= 1 or self.top_k < 0:
            raise LtsError("--temperature must be > 0, --top-p in (0, 1], --top-k >= 0")


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    label: str
    source: str  # workspace | folder | hub | untrained
    path: Path | None = None


def load(ref: str, allow_untrained: bool = False) -> LoadedModel:
    """A trained workspace model (id or unique prefix), a model folder, an untrained architecture
    (with `allow_untrained`), or a Hugging Face Hub id; the error names everything that was tried."""
    path = Path(ref).expanduser()
    if path.is_dir():
        return _from_folder(path, str(path), "folder")
    found = _workspace_model(ref)
    if found is not None:
        return _from_folder(found, found.name, "workspace")
    target = _architecture(ref)
    if target is not None:
        from lts_cli.training import model_id_for

        trained = workspace.models_dir() / model_id_for(target)
        if trained.is_dir():
            return _from_folder(trained, trained.name, "workspace")
        if not allow_untrained:
            raise LtsError(
                f"{target.label} is an architecture without a trained model: `lts train {target.label[:16]}` first, "
                "or add --allow-untrained to generate from random weights"
            )
        return _untrained(target.arch, target.label)
    if _HUB_ID.match(ref):
        return _from_hub(ref)
    raise LtsError(f"{ref!r} is not a workspace model, a model folder, a known architecture or a Hugging Face Hub id")


def _workspace_model(ref: str) -> Path | None:
    root = workspace.models_dir()
    if (root / ref).is_dir() and not ref.startswith("."):
        return root / ref
    if not ID_PREFIX.fullmatch(ref) or not root.is_dir():
        return None  # only id-like refs (gpt2_ + 4 or more hex digits) match by prefix; `gpt2` stays a Hub id
    matches = [p for p in root.glob(f"{ref}*") if p.is_dir() and not p.name.startswith(".")]
    if len(matches) > 1:
        raise LtsError(
            f"{ref!r} matches {len(matches)} models ({', '.join(p.name for p in matches[:4])}); give more characters"
        )
    return matches[0] if matches else None


def _architecture(ref: str) -> Any:
    from lts_cli.gallery import resolve
    from lts_cli.store import open_store

    try:
        with open_store() as store:
            return resolve(ref, store)
    except LtsError:
        return None


def _from_folder(folder: Path, label: str, source: str) -> LoadedModel:
    import transformers

    if not (folder / "config.json").is_file():
        raise LtsError(f"{folder} is not a model folder: it has no config.json")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise LtsError(f"{folder} has no weights ({' or '.join(WEIGHT_FILES[::2])}); the folder is incomplete")
    _quiet(transformers)
    try:
        config = transformers.AutoConfig.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise LtsError(f"{folder}/config.json cannot be read ({_first_line(exc)})") from None
    if (folder / "arch.json").is_file():
        _check_arch(folder, config)
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    except Exception as exc:  # safetensors, torch and transformers raise various types for damaged files
        raise LtsError(
            f"cannot load the weights in {folder} ({type(exc).__name__}: {_first_line(exc)}); the file is damaged"
        ) from None
    return LoadedModel(model.eval(), _tokenizer_for(folder, model), label, source, folder)


def _check_arch(folder: Path, config: Any) -> None:
    from lts_cli.config import load_file
    from lts_cli.modeling import arch_from_gpt2_config

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
    from lts_cli.modeling import gpt2_config

    _quiet(transformers)
    model = transformers.GPT2LMHeadModel(gpt2_config(arch, bos_token_id=50256, eos_token_id=50256))
    return LoadedModel(model.eval(), tokenizer(), f"{label} (untrained: random weights)", "untrained")


def _from_hub(ref: str) -> LoadedModel:
    import transformers

    _quiet(transformers)
    for local_only in (True, False):
        if not local_only and not hub_reachable():
            raise LtsError(
                f"could not load {ref!r}: it is not a workspace model ({workspace.models_dir()}), a folder or a known "
                "architecture, and the Hugging Face Hub is unreachable with no copy in its local cache"
            )
        try:
            model = transformers.AutoModelForCausalLM.from_pretrained(ref, local_files_only=local_only)
            tok = transformers.AutoTokenizer.from_pretrained(ref, local_files_only=local_only)
            return LoadedModel(model.eval(), tok, ref, "hub")
        except OSError as exc:
            if not local_only:
                raise LtsError(f"could not load {ref!r} from the Hugging Face Hub ({_first_line(exc)})") from None
    raise AssertionError("unreachable")


def _quiet(transformers: Any) -> None:
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def generate(
    loaded: LoadedModel, prompt: str, config: GenerateConfig, on_text: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Generate with the KV cache; `on_text` receives the text as it is produced (one sequence only)."""
    import torch
    import transformers

    tok, model = loaded.tokenizer, loaded.model
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"] if prompt else None
    eos = tok.eos_token_id if tok.eos_token_id is not None else model.config.eos_token_id
    if ids is None or ids.shape[1] == 0:
        ids = torch.tensor([[eos]])  # an empty prompt starts a new document
    context = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
    max_new = config.max_new_tokens
    if context is not None:
        if ids.shape[1] >= context:
            raise LtsError(f"the prompt is {ids.shape[1]} tokens; the model's context is {context}; shorten the prompt")
        max_new = min(max_new, context - ids.shape[1])
    if config.seed is not None:
        transformers.set_seed(config.seed)
    sampling = (
        {} if config.greedy else {"temperature": config.temperature, "top_p": config.top_p, "top_k": config.top_k}
    )
    generation = transformers.GenerationConfig(
        do_sample=not config.greedy,
        max_new_tokens=max_new,
        num_return_sequences=config.num_return_sequences,
        pad_token_id=eos,
        eos_token_id=eos if config.stop_at_eos else None,
        use_cache=True,
        **sampling,
    )
    streamer = _Streamer(tok, on_text) if on_text and config.num_return_sequences == 1 else None
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=generation, streamer=streamer
        )
    seconds = time.perf_counter() - start
    new = out[:, ids.shape[1] :]
    new_tokens = sum(_generated_length(row.tolist(), eos) for row in new)
    return {
        "model": loaded.label,
        "source": loaded.source,
        "prompt": prompt,
        "texts": [tok.decode(row, skip_special_tokens=True) for row in new],
        "prompt_tokens": int(ids.shape[1]),
        "new_tokens": new_tokens,
        "max_new_tokens": max_new,
        "seconds": seconds,
        "tokens_per_s": new_tokens / seconds if seconds > 0 else None,
        "settings": _settings(config),
    }


def _settings(config: GenerateConfig) -> dict[str, Any]:
    return {
        "greedy": config.greedy,
        "temperature": None if config.greedy else config.temperature,
        "top_p": None if config.greedy else config.top_p,
        "top_k": None if config.greedy else config.top_k,
        "seed": config.seed,
        "num_return_sequences": config.num_return_sequences,
        "stop_at_eos": config.stop_at_eos,
    }


def _generated_length(row: list[int], eos: int) -> int:
    """Tokens generated in one sequence: up to and including its first end-of-text (the rest is padding)."""
    return row.index(eos) + 1 if eos in row else len(row)


class _Streamer(TextStreamer):
    """transformers' TextStreamer, sending finished words to a callback instead of print()."""

    def __init__(self, tokenizer: Any, on_text: Callable[[str], None]) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.on_text = on_text

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self.on_text(text)


# ---- ONNX Runtime backend -----------------------------------------------------------------------


def onnx_folder(ref: str, allow_untrained: bool = False, on_export: Callable[[Path], None] | None = None) -> Path:
    """The fp32 KV-cache export to generate from: `ref` itself if it is an export folder, else the
    model's default export, made now (into the workspace or beside the model) if it is missing."""
    from lts_cli.exporting import INFO_FILE, default_output, export

    path = Path(ref).expanduser()
    if (path / INFO_FILE).is_file():
        return path
    folder = path if path.is_dir() else _workspace_model(ref)
    if folder is not None and (folder / "onnx" / INFO_FILE).is_file():
        return folder / "onnx"
    target = default_output(load(ref, allow_untrained), past=True, quantize=None, optimize=False)
    if (target / INFO_FILE).is_file():
        return target
    if on_export:
        on_export(target)
    return export(ref, output=target, allow_untrained=allow_untrained).path


def generate_onnx(
    folder: Path, prompt: str, config: GenerateConfig, on_text: Callable[[str], None] | None = None, threads: int = 0
) -> dict[str, Any]:
    """Greedy or sampled decoding with ONNX Runtime and the KV cache, in a plain numpy loop.

    Sampling follows transformers (temperature, then top-k, then top-p); the random stream is numpy's,
    so a seed repeats the ONNX backend's text but not the PyTorch backend's (greedy agrees with both).
    """
    import transformers

    from lts_cli.exporting import empty_past, feeds, next_past, read_info, session

    info = read_info(folder) or {}
    if not info.get("past", True):
        raise LtsError(f"{folder} was exported without the KV cache (--no-past); generation needs the default export")
    sess = session(folder, threads)
    _quiet(transformers)
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    model_config = json.loads((folder / "config.json").read_text())
    eos = tok.eos_token_id if tok.eos_token_id is not None else model_config.get("eos_token_id")
    context = model_config.get("n_positions")
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"] if prompt else []
    prompt_ids = prompt_ids or [eos]
    if context is not None and len(prompt_ids) >= context:
        raise LtsError(f"the prompt is {len(prompt_ids)} tokens; the model's context is {context}; shorten the prompt")
    max_new = min(config.max_new_tokens, context - len(prompt_ids)) if context else config.max_new_tokens
    rng = np.random.default_rng(config.seed)
    texts, new_tokens, prefill_s, decode_s = [], 0, 0.0, 0.0
    start = time.perf_counter()
    for _ in range(config.num_return_sequences):
        ids = np.asarray([prompt_ids], dtype=np.int64)
        t0 = time.perf_counter()
        out = sess.run(None, feeds(sess, ids, empty_past(sess, 1), 0))
        prefill_s += time.perf_counter() - t0
        generated: list[int] = []
        stream = _TextStream(tok, on_text if config.num_return_sequences == 1 else None)
        while True:
            token = _pick(out[0][0, -1], config, rng)
            generated.append(token)
            stream.push(generated)
            if (token == eos and config.stop_at_eos) or len(generated) >= max_new:
                break
            t0 = time.perf_counter()
            out = sess.run(
                None, feeds(sess, np.asarray([[token]]), next_past(sess, out), len(prompt_ids) + len(generated) - 1)
            )
            decode_s += time.perf_counter() - t0
        new_tokens += len(generated)
        texts.append(tok.decode(generated, skip_special_tokens=True))
    seconds = time.perf_counter() - start
    decode_steps = new_tokens - config.num_return_sequences
    return {
        "model": str(folder),
        "source": f"onnx ({info.get('dtype', 'fp32')})",
        "prompt": prompt,
        "texts": texts,
        "prompt_tokens": len(prompt_ids),
        "new_tokens": new_tokens,
        "max_new_tokens": max_new,
        "seconds": seconds,
        "tokens_per_s": new_tokens / seconds if seconds > 0 else None,
        "prefill_s": prefill_s / config.num_return_sequences,
        "decode_ms_per_token": 1000 * decode_s / decode_steps if decode_steps > 0 else None,
        "settings": _settings(config),
    }


def _pick(logits: np.ndarray, config: GenerateConfig, rng: np.random.Generator) -> int:
    """The next token from one row of logits: argmax, or a sample after temperature, top-k and top-p."""
    if config.greedy:
        return int(np.argmax(logits))
    scaled = logits.astype(np.float64) / config.temperature
    candidates = np.arange(scaled.size)
    if config.top_k and config.top_k < scaled.size:
        candidates = np.argpartition(scaled, -config.top_k)[-config.top_k :]
    order = candidates[np.argsort(scaled[candidates])[::-1]]
    probs = np.exp(scaled[order] - scaled[order[0]])
    probs /= probs.sum()
    if config.top_p < 1.0:
        keep = int(np.searchsorted(np.cumsum(probs), config.top_p) + 1)  # the smallest set reaching top_p
        order, probs = order[:keep], probs[:keep] / probs[:keep].sum()
    return int(rng.choice(order, p=probs))


class _TextStream:
    """Sends the text of newly generated tokens to a callback, holding back incomplete characters."""

    def __init__(self, tokenizer: Any, on_text: Callable[[str], None] | None) -> None:
        self.tokenizer = tokenizer
        self.on_text = on_text
        self.sent = 0

    def push(self, tokens: list[int]) -> None:
        if self.on_text is None:
            return
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return
        if len(text) > self.sent:
            self.on_text(text[self.sent :])
            self.sent = len(text)
