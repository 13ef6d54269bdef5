"""`lts export`: a GPT-2 model -> a deployable ONNX folder (KV cache, int8, ORT-optimized), validated.

<output>/
  model.onnx            the decoder; with the KV cache by default (optimum's causal-LM interface:
                        input_ids, attention_mask, position_ids, past_key_values.{i}.key/value ->
                        logits, present.{i}.key/value)
  config.json, generation_config.json, tokenizer files   as in the source model folder
  arch.json             the architecture
  export.json           how it was made and how it validated

Validation compares ONNX Runtime with PyTorch on the same inputs, a prefill and a decode step with
past key values: fp32 fails above FP32_TOLERANCE (max |logit difference|); int8 is judged by
perplexity on the embedded corpus's validation text, and fails above INT8_PPL_TOLERANCE.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lts_cli import __version__, folders, workspace
from lts_cli.errors import LtsError, NotGpt2, UsageError
from lts_cli.modeling import LoadedModel, arch_from_gpt2_config, load, save_tokenizer, write_card
from lts_cli.runtime import EXPORT_FILE, INFO_FILE, empty_past, feeds, next_past, session
from lts_cli.sampling import generation_defaults
from lts_cli.space import GPT2_EOS_ID, Arch
from lts_cli.views import Block, JsonObject, Lines, Note

FP32_TOLERANCE = 1e-3  # max |logit difference| between PyTorch and ONNX Runtime (fp32)
INT8_PPL_TOLERANCE = 0.10  # int8 perplexity may exceed the PyTorch fp32 model's by 10% (relative)
PPL_BLOCKS, PPL_SEQ = 8, 256  # validation text used to judge int8: 8 blocks of up to 256 tokens
QUANTIZE_MODES = ("int8",)

OnEvent = Callable[[str], None]


@dataclass
class ExportResult:
    path: Path
    info: JsonObject  # export.json

    def to_dict(self) -> JsonObject:
        return {"path": str(self.path), **self.info}

    def view(self) -> list[Block]:
        info, v = self.info, self.info["validation"]
        diffs = ", ".join(f"{k.split('_')[0]} {v[k]:.1e}" for k in ("prefill_max_abs_diff", "decode_max_abs_diff")
                          if k in v)  # fmt: skip
        lines = [
            f"  {info['graph']}, {info['dtype']}, {info['file_bytes'] / 2**20:.2f} MiB, opset {info['opset']}",
            f"  validated against PyTorch: max |logit diff| {diffs} (largest logit {v['max_abs_logit']:.2f})",
        ]
        if "int8_perplexity" in v:
            change = f"{v['perplexity_increase']:+.1%}; tolerance {v['tolerance']}"
            lines.append(f"  perplexity on held-out Shakespeare: fp32 {v['fp32_perplexity']:.2f}, int8 "
                         f"{v['int8_perplexity']:.2f} ({change})")  # fmt: skip
        if info["optimized"]:
            fused = ", ".join(f"{op} x{n}" for op, n in info["optimized"]["fused_operators"].items()) or "none"
            lines.append(f"  ONNX Runtime fusions: {fused}")
        untrained = Note("exported RANDOM weights (untrained architecture): for latency work only", always=True)
        return [*([untrained] if info["untrained"] else []), Lines(lines, str(self.path))]


def default_output(loaded: LoadedModel, past: bool, quantize: str | None, optimize: bool) -> Path:
    """Beside the model it came from (workspace models and folders), else in the workspace's exports/
    (pulled and Hub models: the Hub cache is huggingface_hub's, not ours to write into)."""
    name = "onnx" + ("-int8" if quantize else "") + ("" if past else "-nopast") + ("-opt" if optimize else "")
    if loaded.path is not None and loaded.source in ("workspace", "folder"):
        return loaded.path / name
    stem = loaded.label.split(" ")[0].replace("/", "--")
    suffix = "-untrained" if loaded.source == "untrained" else ""
    return workspace.exports_dir() / f"{stem}{suffix}" / name


def export(
    source: str | LoadedModel,
    output: Path | None = None,
    past: bool = True,
    quantize: str | None = None,
    optimize: bool = False,
    force: bool = False,
    allow_untrained: bool = False,
    on_event: OnEvent | None = None,
    on_note: Callable[[str], None] | None = None,
    revision: str | None = None,
) -> ExportResult:
    """Export `source` (a reference `load` understands, or a model already loaded), validate, and only
    then move the folder into place."""
    from lts_cli import gpt2_onnx
    from lts_cli.references import architecture

    emit = on_event or (lambda stage: None)
    if quantize is not None and quantize not in QUANTIZE_MODES:
        raise UsageError(f"--quantize must be one of {', '.join(QUANTIZE_MODES)}, got {quantize!r}")
    if output is not None:
        folders.check_replaceable(output, INFO_FILE, "an lts export", force)
    emit("loading the model")
    if isinstance(source, str):
        architecture(source, revision=revision)  # a model that is not a GPT-2 is refused before its weights load
        loaded = load(source, allow_untrained, on_note, revision=revision)
    else:
        loaded = source
    config = loaded.model.config
    _check_supported(config, loaded.label)
    arch = arch_from_gpt2_config(config)
    target = output or default_output(loaded, past, quantize, optimize)
    folders.check_replaceable(target, INFO_FILE, "an lts export", force)

    with workspace.in_use(*([loaded.path] if loaded.path is not None else [])):  # `models rm` waits
        emit("writing the ONNX graph")
        weights = {k: v.detach().cpu().numpy() for k, v in loaded.model.state_dict().items()}
        graph = "causal-lm-with-past" if past else "causal-lm"
        built = gpt2_onnx.build(arch, weights, graph, dtype=quantize or "fp32")
        with folders.staged_folder(target, INFO_FILE, on_note) as tmp:
            (tmp / EXPORT_FILE).write_bytes(built.embedded().SerializeToString())
            del built, weights
            fusions = _optimize(tmp / EXPORT_FILE) if optimize else None
            loaded.model.config.save_pretrained(tmp)
            _generation_config(loaded, arch).save_pretrained(tmp)
            save_tokenizer(loaded.tokenizer, tmp, arch.n_positions)
            workspace.atomic_write_json(tmp / workspace.ARCH_FILE, arch.to_config())
            emit("validating against PyTorch")
            validation = validate(tmp, loaded, arch, past, quantize)
            info = {
                "lts_version": __version__,
                "source": loaded.label,
                "source_kind": loaded.source,
                "published_as": loaded.published_as,
                "untrained": loaded.source == "untrained",
                "archid": arch.archid,
                "graph": graph,
                "past": past,
                "dtype": quantize or "fp32",
                "opset": gpt2_onnx.OPSET,
                "optimized": fusions,
                "file_bytes": (tmp / EXPORT_FILE).stat().st_size,
                "validation": validation,
                "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            _card(tmp, loaded, arch, info)
            workspace.atomic_write_json(tmp / INFO_FILE, info)
        return ExportResult(target, info)


def _generation_config(loaded: LoadedModel, arch: Arch) -> Any:
    """The source model's own generation_config.json when its folder has one, else lts's defaults."""
    if loaded.path is not None and (loaded.path / "generation_config.json").is_file():
        return loaded.model.generation_config
    eos = loaded.tokenizer.eos_token_id if loaded.tokenizer.eos_token_id is not None else GPT2_EOS_ID
    return generation_defaults(eos, arch.n_positions)


def _card(folder: Path, loaded: LoadedModel, arch: Arch, info: JsonObject) -> None:
    v = info["validation"]
    diffs = ", ".join(
        f"{k.split('_')[0]} {v[k]:.1e}" for k in ("prefill_max_abs_diff", "decode_max_abs_diff") if k in v
    )
    facts = [
        ("source", f"{loaded.label} ({loaded.source})"),
        ("graph", f"{info['graph']}, {info['dtype']}, opset {info['opset']}, {info['file_bytes'] / 2**20:.2f} MiB"),
        ("validated against PyTorch", f"max abs logit difference {diffs}"),
    ]
    if "int8_perplexity" in v:
        facts.append(
            ("perplexity, held-out Shakespeare", f"fp32 {v['fp32_perplexity']:.2f}, int8 {v['int8_perplexity']:.2f}")
        )
    use = """With ONNX Runtime through optimum (`ORTModelForCausalLM.from_pretrained(folder)`), or with lts:
`lts generate FOLDER "ROMEO:" --backend onnx` and `lts profile FOLDER` for its latency on this machine."""
    about = f"An ONNX export by `lts export` of {loaded.label}" + (" (random weights)." if info["untrained"] else ".")
    if loaded.published_as is not None:
        about += (
            f" The pre-trained checkpoint published under the gallery id `{loaded.published_as}`"
            f" ({arch.short()}, the architecture of its own config.json)."
        )
    write_card(folder, f"{loaded.label} (ONNX, {info['dtype']})", arch, about, facts, use)


def _check_supported(config: Any, label: str) -> None:
    """The emitted graph is transformers' GPT-2 with its default options; refuse anything else."""
    if getattr(config, "model_type", None) != "gpt2":
        raise NotGpt2(
            f"{label} is a {getattr(config, 'model_type', 'unknown')!r} model; lts exports, profiles and runs "
            "GPT-2 decoders only on ONNX Runtime (generate it with --backend torch)"
        )
    unsupported = []
    if config.activation_function not in ("gelu_new", "gelu_pytorch_tanh"):
        unsupported.append(f"activation_function={config.activation_function}")
    if getattr(config, "scale_attn_by_inverse_layer_idx", False) or getattr(config, "reorder_and_upcast_attn", False):
        unsupported.append("scale_attn_by_inverse_layer_idx/reorder_and_upcast_attn")
    if not getattr(config, "scale_attn_weights", True) or abs(config.layer_norm_epsilon - 1e-5) > 1e-12:
        unsupported.append("scale_attn_weights/layer_norm_epsilon")
    if unsupported:
        raise LtsError(f"{label} uses GPT-2 options lts cannot export yet: {', '.join(unsupported)}")


def _optimize(path: Path) -> JsonObject:
    """ONNX Runtime's graph optimizations (level EXTENDED, portable across CPUs), saved into the file.

    Reports the fused operators that appeared (e.g. SkipLayerNormalization, BiasGelu, FusedMatMul,
    DynamicQuantizeMatMul). The result needs ONNX Runtime (com.microsoft operators).
    """
    import onnx
    import onnxruntime as ort

    before = Counter(n.op_type for n in onnx.load(path, load_external_data=False).graph.node)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    optimized = path.with_name("optimized.onnx")
    options.optimized_model_filepath = str(optimized)
    options.log_severity_level = 3
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    after = Counter(n.op_type for n in onnx.load(optimized, load_external_data=False).graph.node)
    optimized.replace(path)
    fused = {op: n for op, n in sorted(after.items()) if n > before.get(op, 0)}
    return {
        "level": "extended",
        "fused_operators": fused,
        "nodes_before": sum(before.values()),
        "nodes_after": sum(after.values()),
    }


# ---- validation ---------------------------------------------------------------------------------


def validate(folder: Path, loaded: LoadedModel, arch: Arch, past: bool, quantize: str | None) -> JsonObject:
    """PyTorch vs ONNX Runtime on the same inputs: a prefill, then (with the cache) a decode step."""
    import torch

    sess = session(folder)
    model = loaded.model
    rng = np.random.default_rng(0)
    ids = rng.integers(0, min(arch.vocab_size, len(loaded.tokenizer)), size=(2, min(8, arch.n_positions - 1)))
    cache_in = empty_past(sess, 2) if past else None
    out = sess.run(None, feeds(sess, ids, cache_in, 0))
    with torch.inference_mode():
        ref = model(input_ids=torch.from_numpy(ids), use_cache=past)
    result: JsonObject = {"prefill_max_abs_diff": float(np.abs(out[0] - ref.logits.numpy()).max())}
    if past:
        step = rng.integers(0, min(arch.vocab_size, len(loaded.tokenizer)), size=(2, 1))
        out2 = sess.run(None, feeds(sess, step, next_past(sess, out), ids.shape[1]))
        cache = ref.cache if hasattr(ref, "cache") else ref.past_key_values
        with torch.inference_mode():
            ref2 = model(input_ids=torch.from_numpy(step), cache=cache, use_cache=True)
        result["decode_max_abs_diff"] = float(np.abs(out2[0] - ref2.logits.numpy()).max())
    worst = max(v for k, v in result.items() if k.endswith("diff"))
    result["max_abs_logit"] = float(np.abs(ref.logits.numpy()).max())
    if quantize is None:
        result["tolerance"] = FP32_TOLERANCE
        if not worst <= FP32_TOLERANCE:
            raise LtsError(
                f"validation failed: ONNX Runtime and PyTorch logits differ by {worst:.2e} "
                f"(tolerance {FP32_TOLERANCE:g}); nothing was written"
            )
        return result
    fp32_ppl, onnx_ppl = perplexities(sess, model, loaded.tokenizer, arch, past)
    result.update(
        {
            "fp32_perplexity": fp32_ppl,
            "int8_perplexity": onnx_ppl,
            "perplexity_increase": onnx_ppl / fp32_ppl - 1,
            "tolerance": f"perplexity +{INT8_PPL_TOLERANCE:.0%}",
        }
    )
    if not onnx_ppl <= fp32_ppl * (1 + INT8_PPL_TOLERANCE):
        raise LtsError(
            f"validation failed: int8 perplexity {onnx_ppl:.2f} is more than {INT8_PPL_TOLERANCE:.0%} above "
            f"the fp32 model's {fp32_ppl:.2f}; nothing was written"
        )
    return result


def perplexities(sess: Any, model: Any, tokenizer: Any, arch: Arch, past: bool) -> tuple[float, float]:
    """Perplexity of the PyTorch model and of the ONNX model on the embedded corpus's validation text."""
    import torch

    from lts_cli.corpus import embedded_corpus

    seq = min(PPL_SEQ, arch.n_positions)
    text = "\n".join(embedded_corpus().splits["validation"])
    ids = np.asarray(tokenizer(text[: 8 * PPL_BLOCKS * seq], add_special_tokens=False)["input_ids"][: PPL_BLOCKS * seq])
    blocks = ids[: (ids.size // seq) * seq].reshape(-1, seq)
    onnx_nll, torch_nll = [], []
    for block in blocks:
        row = block[None, :]
        logits = sess.run(None, feeds(sess, row, empty_past(sess, 1) if past else None, 0))[0]
        onnx_nll.append(_nll(logits[0], block))
        with torch.inference_mode():
            torch_nll.append(_nll(model(input_ids=torch.from_numpy(row)).logits[0].numpy(), block))
    return math.exp(float(np.mean(torch_nll))), math.exp(float(np.mean(onnx_nll)))


def _nll(logits: np.ndarray, ids: np.ndarray) -> float:
    """Mean next-token negative log-likelihood of `ids` under `logits` [S, V]."""
    shifted = logits[:-1].astype(np.float64)
    top = shifted.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(shifted - top).sum(axis=1)) + top[:, 0]
    return float(np.mean(log_z - shifted[np.arange(ids.size - 1), ids[1:]]))
