"""Text generation: transformers' `generate()` with its KV cache, or a numpy loop over an ONNX Runtime
export with the KV cache; both stream text as it is produced and share the sampling settings."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from lts_cli import workspace
from lts_cli.errors import LtsError
from lts_cli.modeling import LoadedModel
from lts_cli.sampling import GenerateConfig
from lts_cli.views import Block, JsonObject, Lines, Note

OnText = Callable[[str], None]


def _budget(prompt_tokens: int, context: int | None, config: GenerateConfig, on_note: OnText | None) -> int:
    """How many tokens to generate: as asked, unless the model's context ends first (then say so)."""
    if context is None:
        return config.max_new_tokens
    if prompt_tokens >= context:
        raise LtsError(
            f"the prompt is {prompt_tokens} tokens and the model's context is {context}; "
            f"shorten the prompt to at most {context - 1} tokens"
        )
    room = context - prompt_tokens
    if room < config.max_new_tokens and on_note is not None:
        on_note(
            f"the prompt ({prompt_tokens} tokens) leaves room for {room} of the {config.max_new_tokens} new tokens "
            f"asked for in the model's context of {context}; generating at most {room}"
        )
    return min(config.max_new_tokens, room)


def generate(
    loaded: LoadedModel,
    prompt: str,
    config: GenerateConfig,
    on_text: OnText | None = None,
    on_note: OnText | None = None,
    threads: int = 0,
) -> Generated:
    """Generate with the KV cache. `on_text` receives the prompt, then the text as it is produced (one
    sequence only), and nothing if the prompt is refused; `on_note` hears what the user should know.
    `threads`: torch's intra-op threads (0: torch's default, all cores)."""
    import torch
    import transformers

    if threads:
        torch.set_num_threads(threads)

    tok, model = loaded.tokenizer, loaded.model
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"] if prompt else None
    eos = tok.eos_token_id if tok.eos_token_id is not None else model.config.eos_token_id
    if ids is None or ids.shape[1] == 0:
        ids = torch.tensor([[eos]])  # an empty prompt starts a new document
    context = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
    max_new = _budget(int(ids.shape[1]), context, config, on_note)
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
    streamer = _TextStream(tok, on_text, prompt) if on_text and config.num_return_sequences == 1 else None
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=generation, streamer=streamer
        )
    seconds = time.perf_counter() - start
    new = out[:, ids.shape[1] :]
    new_tokens = sum(_generated_length(row.tolist(), eos) for row in new)
    texts = [tok.decode(row, skip_special_tokens=True) for row in new]
    return Generated(
        loaded.label, loaded.source, prompt, texts, int(ids.shape[1]), new_tokens, max_new, seconds, config
    )


@dataclass(frozen=True)
class Generated:
    """What was generated, and how fast (prefill and per-token decode separately on ONNX Runtime)."""

    model: str
    source: str
    prompt: str
    texts: list[str]
    prompt_tokens: int
    new_tokens: int
    max_new_tokens: int  # what the context left room for
    seconds: float
    config: GenerateConfig
    prefill_s: float | None = None
    decode_ms_per_token: float | None = None

    @property
    def tokens_per_s(self) -> float | None:
        return self.new_tokens / self.seconds if self.seconds > 0 else None

    def view(self) -> list[Block]:
        """Several samples one after another; a single one was streamed as it came (`run`'s on_text):
        then only how fast it was."""
        speed = (
            f"{self.new_tokens} tokens in {self.seconds:.2f} s ({self.tokens_per_s or 0:.1f} tokens/s), {self.model}"
        )
        if len(self.texts) == 1:
            return [Note(speed)]
        return [Lines([f"--- sample {i}\n{self.prompt}{text}" for i, text in enumerate(self.texts, 1)]), Note(speed)]

    def to_dict(self) -> JsonObject:
        c = self.config
        sampled = not c.greedy
        out = {**{k: v for k, v in asdict(self).items() if k != "config"}, "tokens_per_s": self.tokens_per_s}
        out["requested_new_tokens"] = c.max_new_tokens
        out["settings"] = {
            "greedy": c.greedy,
            "temperature": c.temperature if sampled else None,
            "top_p": c.top_p if sampled else None,
            "top_k": c.top_k if sampled else None,
            "seed": c.seed,
            "num_return_sequences": c.num_return_sequences,
            "stop_at_eos": c.stop_at_eos,
        }
        return out


def run(
    ref: str,
    prompt: str,
    config: GenerateConfig,
    backend: str = "torch",
    threads: int = 0,
    allow_untrained: bool = False,
    revision: str | None = None,
    on_text: OnText | None = None,
    on_note: OnText | None = None,
) -> Generated:
    """`lts generate`: text from whatever `ref` names, with transformers (`backend` torch) or ONNX
    Runtime (exporting the model once, into its default export folder, if it has none)."""
    from lts_cli.modeling import load
    from lts_cli.tokenizer import OWN

    note = on_note or (lambda text: None)
    if backend == "onnx":
        folder = onnx_folder(
            ref, allow_untrained, lambda path: note(f"exporting to {path} (once)"), on_note, prompt, revision
        )
        return generate_onnx(folder, prompt, config, on_text, on_note, threads)
    loaded = load(ref, allow_untrained=allow_untrained, on_note=on_note, revision=revision)
    if loaded.source == "untrained":
        note(f"{loaded.label}: the text below is noise from an untrained model")
    elif loaded.tokenizer_how != OWN:
        note(f"tokenizer: {loaded.tokenizer_how}")
    result = generate(loaded, prompt, config, on_text, on_note, threads)
    return replace(result, model=loaded.describe())


def _generated_length(row: list[int], eos: int) -> int:
    """Tokens generated in one sequence: up to and including its first end-of-text (the rest is padding)."""
    return row.index(eos) + 1 if eos in row else len(row)


class _TextStream:
    """Sends the prompt, then the text of newly generated tokens, to a callback, holding back
    incomplete characters. Also a transformers streamer (`put`/`end`), whose first `put` is the prompt."""

    def __init__(self, tokenizer: Any, on_text: OnText | None, prompt: str) -> None:
        self.tokenizer = tokenizer
        self.on_text = on_text
        self.prompt = prompt
        self.tokens: list[int] = []
        self.sent = 0
        self.started = False

    def start(self) -> None:
        if not self.started and self.on_text is not None and self.prompt:
            self.on_text(self.prompt)
        self.started = True

    def push(self, token: int) -> None:
        self.start()
        self.tokens.append(token)
        self._send(final=False)

    def _send(self, final: bool) -> None:
        if self.on_text is None:
            return
        text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        if text.endswith("\ufffd") and not final:
            return
        if len(text) > self.sent:
            self.on_text(text[self.sent :])
            self.sent = len(text)

    def put(self, value: Any) -> None:
        if not self.started:  # transformers hands over the prompt first
            self.start()
            return
        for token in value.reshape(-1).tolist():
            self.push(int(token))

    def end(self) -> None:
        self.start()
        self._send(final=True)


# ---- ONNX Runtime backend -----------------------------------------------------------------------


def onnx_folder(
    ref: str,
    allow_untrained: bool = False,
    on_export: Callable[[Path], None] | None = None,
    on_note: OnText | None = None,
    prompt: str | None = None,
    revision: str | None = None,
) -> Path:
    """The fp32 KV-cache export to generate from: `ref` itself if it is an export folder, else the
    model's default export, made now (into the workspace or beside the model) if it is missing.
    `prompt`: checked against the model's context before anything is exported."""
    from lts_cli.exporting import default_output, export
    from lts_cli.modeling import load, workspace_model
    from lts_cli.runtime import INFO_FILE

    path = Path(ref).expanduser()
    if (path / INFO_FILE).is_file():
        return path
    folder = path if path.is_dir() else workspace_model(ref) if revision is None else None
    if folder is not None and (folder / "onnx" / INFO_FILE).is_file():
        return folder / "onnx"
    loaded = load(ref, allow_untrained, on_note=on_note, revision=revision)
    target = default_output(loaded, past=True, quantize=None, optimize=False)
    if (target / INFO_FILE).is_file():
        return target
    if prompt is not None:
        ids = loaded.tokenizer(prompt, add_special_tokens=False)["input_ids"] if prompt else [0]
        _budget(len(ids), getattr(loaded.model.config, "n_positions", None), GenerateConfig(), None)
    if on_export:
        on_export(target)
    return export(loaded, output=target).path


def generate_onnx(
    folder: Path,
    prompt: str,
    config: GenerateConfig,
    on_text: OnText | None = None,
    on_note: OnText | None = None,
    threads: int = 0,
) -> Generated:
    """Greedy or sampled decoding with ONNX Runtime and the KV cache, in a plain numpy loop.

    Sampling follows transformers (temperature, then top-k, then top-p); the random stream is numpy's,
    so a seed repeats the ONNX backend's text but not the PyTorch backend's (greedy agrees with both).
    """
    with workspace.in_use(folder):
        return _generate_onnx(folder, prompt, config, on_text, on_note, threads)


def _generate_onnx(
    folder: Path, prompt: str, config: GenerateConfig, on_text: OnText | None, on_note: OnText | None, threads: int
) -> Generated:
    import transformers

    from lts_cli.modeling import quiet
    from lts_cli.runtime import empty_past, feeds, next_past, read_info, session

    info = read_info(folder) or {}
    if not info.get("past", True):
        raise LtsError(f"{folder} was exported without the KV cache (--no-past); generation needs the default export")
    sess = session(folder, threads)
    quiet(transformers)
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    model_config = json.loads((folder / "config.json").read_text())
    eos = tok.eos_token_id if tok.eos_token_id is not None else model_config.get("eos_token_id")
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"] if prompt else []
    prompt_ids = prompt_ids or [eos]
    max_new = _budget(len(prompt_ids), model_config.get("n_positions"), config, on_note)
    rng = np.random.default_rng(config.seed)
    texts: list[str] = []
    new_tokens, prefill_s, decode_s = 0, 0.0, 0.0
    start = time.perf_counter()
    for _ in range(config.num_return_sequences):
        ids = np.asarray([prompt_ids], dtype=np.int64)
        t0 = time.perf_counter()
        out = sess.run(None, feeds(sess, ids, empty_past(sess, 1), 0))
        prefill_s += time.perf_counter() - t0
        stream = _TextStream(tok, on_text if config.num_return_sequences == 1 else None, prompt)
        while True:
            token = _pick(out[0][0, -1], config, rng)
            stream.push(token)
            if (token == eos and config.stop_at_eos) or len(stream.tokens) >= max_new:
                break
            t0 = time.perf_counter()
            past_len = len(prompt_ids) + len(stream.tokens) - 1
            out = sess.run(None, feeds(sess, np.asarray([[token]]), next_past(sess, out), past_len))
            decode_s += time.perf_counter() - t0
        stream.end()
        new_tokens += len(stream.tokens)
        texts.append(str(tok.decode(stream.tokens, skip_special_tokens=True)))
    seconds = time.perf_counter() - start
    decode_steps = new_tokens - config.num_return_sequences
    return Generated(
        str(folder), f"onnx ({info.get('dtype', 'fp32')})", prompt, texts, len(prompt_ids), new_tokens, max_new,
        seconds, config, prefill_s / config.num_return_sequences,
        1000 * decode_s / decode_steps if decode_steps > 0 else None,
    )  # fmt: skip


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
