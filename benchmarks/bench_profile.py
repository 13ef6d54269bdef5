"""`make bench-profile`: what `lts profile` costs at the reference settings, on three gallery models.

For gpt2_a9e3 (1.06M), gpt2_ddf63 (13.32M) and gpt2_6c6e (49.85M), each in a fresh process with a
fresh workspace (cold cache), at seq 1024, batch 1, 1 thread, 2 warm-up + 25 timed runs, it reports:
build and session seconds, everything but the timed runs (the issue's "overhead", process start
included), latency mean / median / CV, file MiB and the process's peak RSS.

Then, for the mid-size model, it checks the emitted graph against a torch-exported graph of the same
forward (transformers GPT-2 with the LM head on the last position, softmax; torch 2.13's default
dynamo exporter), timed interleaved in one process, and the repeatability of `--adaptive` (the same
architecture measured twice).

Run on a quiet machine; the load average is printed with the results.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from common import run_lts

MODELS = {
    "gpt2_a9e3147996070fda25af4b39ed95b6a18d6d0402": "1.06M",
    "gpt2_ddf63c1125f1fed5a7dd3537f640834187719996": "13.32M",
    "gpt2_6c6e63116ff74ba444ff5a08cef54380073ebea3": "49.85M",
}
MID = "gpt2_ddf63c1125f1fed5a7dd3537f640834187719996"
RESULTS = Path(__file__).parent / "results"


def run_profile(model_id: str, *flags: str) -> tuple[dict, float, float]:
    """The published prefill measurement of `lts profile ... --json` in a fresh process and workspace:
    (the prefill measurement, wall s, peak RSS MiB)."""
    with tempfile.TemporaryDirectory() as home:
        stdout, wall, peak, _ = run_lts(home, "profile", model_id, "--json", "--objectives", "onnx_latency", *flags)
        return json.loads(stdout)["prefill"], wall, peak


def torch_vs_emitted(model_id: str, rounds: int = 15) -> dict:
    """Median latency of the emitted graph and of a torch export of the same forward, interleaved."""
    import numpy as np
    import onnxruntime as ort
    import torch
    import transformers

    from lts_cli import gpt2_onnx
    from lts_cli.gallery import find
    from lts_cli.modeling import gpt2_config
    from lts_cli.runtime import session_options
    from lts_cli.settings import MeasureSettings

    arch = find(model_id).arch
    model = transformers.GPT2LMHeadModel(gpt2_config(arch)).eval()

    class NextToken(torch.nn.Module):  # the published objective's forward: LM head on the last position only
        def __init__(self, m: torch.nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            logits = self.m(input_ids=input_ids, use_cache=False, logits_to_keep=1).logits
            return torch.softmax(logits[:, -1, :], dim=-1)

    ids = torch.randint(0, arch.vocab_size, (1, 1024))
    settings = MeasureSettings()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "torch.onnx"
        start = time.perf_counter()
        program = torch.onnx.export(
            NextToken(model),
            (ids,),
            dynamo=True,
            verbose=False,
            input_names=["input_ids"],
            output_names=["probs"],
            dynamic_shapes={"input_ids": {0: torch.export.Dim("batch"), 1: torch.export.Dim("seq", max=1024)}},
        )
        assert program is not None
        program.save(str(path), external_data=True)
        export_s = time.perf_counter() - start
        torch_sess = ort.InferenceSession(str(path), session_options(settings), providers=["CPUExecutionProvider"])
        torch_mib = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20
        weights = {k: v.numpy() for k, v in model.state_dict().items()}
        emitted = gpt2_onnx.build(arch, weights).embedded().SerializeToString()
        ours = ort.InferenceSession(emitted, session_options(settings), providers=["CPUExecutionProvider"])
        feed = {"input_ids": ids.numpy()}
        diff = float(np.abs(torch_sess.run(None, feed)[0] - ours.run(None, feed)[0]).max())
        times: dict[str, list[float]] = {"torch": [], "lts": []}
        for sess in (torch_sess, ours):
            for _ in range(2):
                sess.run(None, feed)
        for r in range(rounds):
            order = [("torch", torch_sess), ("lts", ours)]
            for name, sess in order if r % 2 else order[::-1]:
                t0 = time.perf_counter()
                sess.run(None, feed)
                times[name].append(time.perf_counter() - t0)
    torch_med, ours_med = statistics.median(times["torch"]), statistics.median(times["lts"])
    return {
        "torch_export_s": export_s,
        "torch_file_mib": torch_mib,
        "torch_median_s": torch_med,
        "lts_median_s": ours_med,
        "ratio_lts_over_torch": ours_med / torch_med,
        "max_abs_prob_diff": diff,
        "rounds": rounds,
    }


def main() -> None:
    load = os.getloadavg()[0]
    print(f"lts profile, cold cache, seq 1024, batch 1, 1 thread, 2 warm-up + 25 timed runs; load {load:.2f}")
    header = (
        f"{'model':<14} {'params':>7} {'build s':>8} {'session s':>9} {'not timing s':>12} {'mean s':>8} "
        f"{'median s':>9} {'CV':>6} {'file MiB':>9} {'peak RSS MiB':>12}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for model_id, params in MODELS.items():
        m, wall, rss = run_profile(model_id, "--no-cache")
        not_timing = wall - m["timing_s"]
        rows.append({"model": model_id, **m, "wall_s": wall, "not_timing_s": not_timing, "process_peak_rss_mib": rss})
        print(
            f"{model_id[:13]:<14} {params:>7} {m['build_s']:>8.2f} {m['session_s']:>9.2f} {not_timing:>12.2f} "
            f"{m['latency_mean_s']:>8.4f} {m['latency_s']:>9.4f} {m['latency_cv']:>6.1%} {m['memory_mib']:>9.2f} "
            f"{rss:>12.0f}"
        )
    print("not timing s = wall time of the whole `lts profile` process minus its timed runs (imports included)")

    print(f"\nemitted graph vs torch export of the same forward, {MID[:13]}, seq 1024, 1 thread, interleaved:")
    cmp = torch_vs_emitted(MID)
    print(
        f"torch (dynamo exporter) median {cmp['torch_median_s']:.4f} s, lts {cmp['lts_median_s']:.4f} s, "
        f"ratio lts/torch {cmp['ratio_lts_over_torch']:.3f} over {cmp['rounds']} rounds; "
        f"max |prob diff| {cmp['max_abs_prob_diff']:.1e}; torch export {cmp['torch_export_s']:.1f} s, "
        f"{cmp['torch_file_mib']:.2f} MiB"
    )

    print(f"\n--adaptive repeatability, {MID[:13]}, twice, cold cache:")
    adaptive = []
    for _ in range(2):
        m, wall, _rss = run_profile(MID, "--no-cache", "--adaptive")
        adaptive.append({"latency_s": m["latency_s"], "runs": m["runs"], "stop": m["stop"], "wall_s": wall})
    a, b = adaptive[0]["latency_s"], adaptive[1]["latency_s"]
    print(
        f"medians {a:.4f} / {b:.4f} s ({abs(a - b) / min(a, b):.1%} apart), runs {adaptive[0]['runs']} / "
        f"{adaptive[1]['runs']}, wall {adaptive[0]['wall_s']:.1f} / {adaptive[1]['wall_s']:.1f} s"
    )

    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"profile-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"load": load, "rows": rows, "torch_vs_emitted": cmp, "adaptive": adaptive}, indent=2))
    print(f"\nraw results: {path}")


if __name__ == "__main__":
    main()
