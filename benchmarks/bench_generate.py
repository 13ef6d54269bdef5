"""`make bench-generate`: tokens/s of transformers generate() vs the ONNX Runtime backend, fp32 and int8.

For gpt2_a9e3 (1.06M, trained here for 200 steps on the embedded corpus unless --workspace already has
it) and gpt2_ddf63 (13.32M, random weights: speed does not depend on the values), batch 1, a 32-token
prompt, 128 greedy new tokens (end-of-text ignored), the same thread count everywhere:

- tokens/s of transformers `generate()` (KV cache) and of `lts generate --backend onnx`, fp32 and int8
  (median of 3 runs each, interleaved), with prefill latency and per-token decode latency separately;
- the memory-bandwidth bound of the LM-head product (bytes of the tied embedding / measured read
  bandwidth): the least time per token any implementation needs for that product alone;
- file sizes, and validation perplexity on the whole held-out text (Twelfth Night) of PyTorch fp32,
  ONNX fp32 and ONNX int8 for the trained model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

A9E3 = "gpt2_a9e3147996070fda25af4b39ed95b6a18d6d0402"
DDF63 = "gpt2_ddf63c1125f1fed5a7dd3537f640834187719996"
PROMPT_TOKENS, NEW_TOKENS, RUNS = 32, 128, 3


def read_bandwidth_gbs() -> float:
    """Median read bandwidth of summing a 512 MiB float32 array (GB/s)."""
    block = np.ones(128 * 2**20, dtype=np.float32)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        block.sum()
        times.append(time.perf_counter() - start)
    return block.nbytes / statistics.median(times) / 1e9


def ensure_trained(threads: int) -> None:
    from lts_cli import workspace

    if (workspace.models_dir() / A9E3).is_dir():
        return
    from lts_cli.corpus import embedded_corpus
    from lts_cli.gallery import find
    from lts_cli.references import architecture as resolve
    from lts_cli.training import TrainConfig, train

    print(f"training {A9E3[:13]} for 200 steps (seq 256, batch 8) on the embedded corpus ...", flush=True)
    config = TrainConfig(max_steps=200, batch_size=8, seq_len=256, eval_every=1000, save_every=1000, threads=threads)
    result = train(resolve(find(A9E3).id), config, embedded_corpus())
    print(f"  validation perplexity {result.metrics['val_perplexity']:.1f}", flush=True)


def prompt_text(tokenizer: Any) -> str:
    from lts_cli.corpus import embedded_corpus

    ids = tokenizer(embedded_corpus().splits["test"][0][2000:4000], add_special_tokens=False)["input_ids"]
    return tokenizer.decode(ids[:PROMPT_TOKENS])


def torch_run(loaded: Any, prompt: str) -> dict[str, float]:
    import torch

    from lts_cli.generation import generate
    from lts_cli.sampling import GenerateConfig

    config = GenerateConfig(max_new_tokens=NEW_TOKENS, greedy=True, stop_at_eos=False)
    ids = loaded.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        start = time.perf_counter()
        loaded.model(input_ids=ids, use_cache=True)
        prefill = time.perf_counter() - start
    result = generate(loaded, prompt, config)
    return {
        "tokens_per_s": result.tokens_per_s,
        "prefill_s": prefill,
        "decode_ms": 1000 * (result.seconds - prefill) / (NEW_TOKENS - 1),
        "tokens": result.new_tokens,
    }


def onnx_run(folder: Path, prompt: str, threads: int) -> dict[str, float]:
    from lts_cli.generation import generate_onnx
    from lts_cli.sampling import GenerateConfig

    config = GenerateConfig(max_new_tokens=NEW_TOKENS, greedy=True, stop_at_eos=False)
    result = generate_onnx(folder, prompt, config, threads=threads)
    return {
        "tokens_per_s": result.tokens_per_s,
        "prefill_s": result.prefill_s,
        "decode_ms": result.decode_ms_per_token,
        "tokens": result.new_tokens,
    }


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def validation_perplexity(folder: Path | None, loaded: Any, past: bool = True) -> float:
    """Perplexity over the whole validation split in blocks of 256 (ONNX export, or PyTorch if None)."""
    import math

    import torch

    from lts_cli.corpus import embedded_corpus, tokenize
    from lts_cli.exporting import _nll
    from lts_cli.runtime import empty_past, feeds, session

    tokens = np.asarray(tokenize(embedded_corpus())["validation"], dtype=np.int64)
    blocks = tokens[: (tokens.size // 256) * 256].reshape(-1, 256)
    sess = session(folder) if folder is not None else None
    nll = []
    for block in blocks:
        row = block[None, :]
        if sess is not None:
            logits = sess.run(None, feeds(sess, row, empty_past(sess, 1) if past else None, 0))[0][0]
        else:
            with torch.inference_mode():
                logits = loaded.model(input_ids=torch.from_numpy(row)).logits[0].numpy()
        nll.append(_nll(logits, block))
    return math.exp(float(np.mean(nll)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", help="LTS_HOME to use (default: a fresh temporary one)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    home = args.workspace or tempfile.mkdtemp(prefix="lts-bench-")
    os.environ["LTS_HOME"] = home

    import torch

    from lts_cli.exporting import default_output, export
    from lts_cli.modeling import load

    torch.set_num_threads(args.threads)
    ensure_trained(args.threads)
    bandwidth = read_bandwidth_gbs()
    print(
        f"batch 1, {PROMPT_TOKENS}-token prompt, {NEW_TOKENS} greedy tokens, {args.threads} threads, "
        f"read bandwidth {bandwidth:.1f} GB/s, load {os.getloadavg()[0]:.2f}"
    )
    header = (
        f"{'model':<13} {'backend':<11} {'tokens/s':>9} {'x generate':>10} {'prefill ms':>10} {'decode ms/tok':>13} "
        f"{'LM-head bound ms':>16} {'file MiB':>9}"
    )
    print(header)
    print("-" * len(header))
    for model_id, untrained in ((A9E3, False), (DDF63, True)):
        loaded = load(model_id, allow_untrained=untrained)
        folders = {}
        for quantize in (None, "int8"):
            target = default_output(loaded, past=True, quantize=quantize, optimize=False)
            if not (target / "export.json").is_file():
                export(model_id, output=target, quantize=quantize, allow_untrained=untrained)
            folders[quantize or "fp32"] = target
        prompt = prompt_text(loaded.tokenizer)
        runs: dict[str, list[dict[str, float]]] = {"torch": [], "onnx fp32": [], "onnx int8": []}
        for _ in range(RUNS):
            runs["torch"].append(torch_run(loaded, prompt))
            runs["onnx fp32"].append(onnx_run(folders["fp32"], prompt, args.threads))
            runs["onnx int8"].append(onnx_run(folders["int8"], prompt, args.threads))
        medians = {k: median_of(v) for k, v in runs.items()}
        config = loaded.model.config
        embedding = config.vocab_size * config.n_embd
        for backend, m in medians.items():
            bytes_per_weight = 1 if backend.endswith("int8") else 4
            bound_ms = 1000 * embedding * bytes_per_weight / (bandwidth * 1e9)
            size = (
                (folders[backend.split()[1]] / "model.onnx").stat().st_size / 2**20
                if backend != "torch"
                else float("nan")
            )
            speedup = m["tokens_per_s"] / medians["torch"]["tokens_per_s"]
            label = model_id[:12] + ("*" if untrained else "")
            print(
                f"{label:<13} {backend:<11} {m['tokens_per_s']:>9.1f} {speedup:>10.2f} {1000 * m['prefill_s']:>10.1f} "
                f"{m['decode_ms']:>13.2f} {bound_ms:>16.2f} {size:>9.2f}"
            )
        if not untrained:
            ppl = {
                "torch fp32": validation_perplexity(None, loaded),
                "onnx fp32": validation_perplexity(folders["fp32"], loaded),
                "onnx int8": validation_perplexity(folders["int8"], loaded),
            }
            rel = ppl["onnx int8"] / ppl["torch fp32"] - 1
            print(
                "  validation perplexity (Twelfth Night, blocks of 256): "
                + ", ".join(f"{k} {v:.2f}" for k, v in ppl.items())
                + f"; int8 {rel:+.1%} vs fp32"
            )
    print("* random weights (speed only). LM-head bound: embedding bytes / read bandwidth, per token.")


if __name__ == "__main__":
    main()
