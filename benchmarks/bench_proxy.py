"""`make bench-proxy`: does non-embedding parameter count rank architectures like brief training does,
on the embedded corpus and a laptop's budget?

`lts proxy --sample N` (architectures spread over 1M..20M non-embedding parameters, seq 128, batch
4, validation on a fixed sample of 8,192 tokens spread over the split, the same for every
architecture), once per budget (`--steps`, 25 and 100 steps), each budget in a fresh workspace except
for the token cache (on 2 cores a step of even a 1-layer model takes ~1-2 s, most of it the
50257-wide LM head); then the throughput check,
side by side: tokens/s of `lts train` of the smallest architecture, of `lts proxy` training it with
the same settings, and of `lts train` again (the same code path, so they should agree within noise).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from common import run_lts

RESULTS = Path(__file__).parent / "results"


def throughput(archs: list[dict[str, Any]], tokens: str, args: argparse.Namespace) -> dict[str, Any]:
    """Side by side: `lts train` of the smallest architecture, `lts proxy` of the four smallest (the
    same settings, a fresh workspace), `lts train` again; tokens/s of that architecture each time."""
    smallest = sorted(archs, key=lambda r: r["non_embedding_params"])[:4]
    steps = args.steps[0]
    budget = ["--max-steps", str(steps), "--seq-len", str(args.seq_len), "--batch-size", str(args.batch_size),
              "--warmup-steps", str(max(1, steps // 10)), "--config", args.config]  # fmt: skip
    saves = ["--eval-every", str(steps + 1), "--save-every", str(steps)]  # as lts proxy does
    rates: dict[str, list[float]] = {"train": [], "proxy": []}
    for tool in ("train", "proxy", "train"):
        with tempfile.TemporaryDirectory() as home:
            (Path(home) / "tokens").symlink_to(tokens, target_is_directory=True)
            refs = []
            for i, row in enumerate(smallest):
                spec = Path(home) / f"arch{i}.json"
                spec.write_text(json.dumps({k: row["arch"][k] for k in ("n_layer", "d_model", "d_inner", "n_head")}))
                refs.append(str(spec))
            if tool == "train":
                stdout, _, _, _ = run_lts(home, "train", refs[0], *budget, *saves, "--json")
                rates["train"].append(json.loads(stdout)["tokens_per_second"])
            else:
                stdout, _, _, _ = run_lts(home, "proxy", "--archs", ",".join(refs), *budget[:-2], "--eval-tokens",
                                          str(args.eval_tokens), "--json")  # fmt: skip
                first = next(r for r in json.loads(stdout)["architectures"] if r["arch"] == smallest[0]["arch"])
                rates["proxy"].append(first["tokens_per_second"])
    train = sum(rates["train"]) / len(rates["train"])
    print(
        f"\nthroughput, {smallest[0]['arch']}: lts train {rates['train'][0]:,.0f} and {rates['train'][1]:,.0f} "
        f"tokens/s, lts proxy {rates['proxy'][0]:,.0f} tokens/s between them (ratio {rates['proxy'][0] / train:.2f})"
    )
    return {"arch": smallest[0]["arch"], **rates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=10)
    parser.add_argument("--steps", type=int, nargs="+", default=[25, 100])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--eval-tokens", type=int, default=8192, help="validation tokens (the same for all)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    common = ["--sample", str(args.sample), "--min-params", "1e6", "--max-params", "2e7",
              "--seq-len", str(args.seq_len), "--batch-size", str(args.batch_size), "--json"]  # fmt: skip
    print(
        f"lts proxy {' '.join(common)} (--eval-tokens {args.eval_tokens}); budgets {args.steps} steps; load {load:.2f}"
    )
    record: dict[str, Any] = {"load": load, "budgets": []}
    with tempfile.TemporaryDirectory() as tokens, tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "eval.yaml"  # lts train, in the throughput check: one final evaluation, the same
        config.write_text(f"eval_tokens: {args.eval_tokens}\nfinal_eval: sample\n")
        common += ["--eval-tokens", str(args.eval_tokens)]
        args.config = str(config)
        for steps in args.steps:
            with tempfile.TemporaryDirectory() as home:
                (Path(home) / "tokens").symlink_to(tokens, target_is_directory=True)
                stdout, wall, peak, _ = run_lts(
                    home, "proxy", *common, "--max-steps", str(steps), "--warmup-steps", str(max(1, steps // 10))
                )
            rep = json.loads(stdout)
            record["budgets"].append({"steps": steps, "wall_s": wall, "peak_rss_mib": peak, "report": rep})
            print(f"\n{steps} steps per architecture: {wall:.0f} s, peak RSS {peak:.0f} MiB; {rep.get('seconds')}")
            for p in rep["proxies"].values():
                print(
                    f"  {p['label']:<36} Spearman {p['spearman']:+.3f} [{p['spearman_ci95'][0]:+.2f}, "
                    f"{p['spearman_ci95'][1]:+.2f}]  Kendall {p['kendall']:+.3f} [{p['kendall_ci95'][0]:+.2f}, "
                    f"{p['kendall_ci95'][1]:+.2f}]  top-25% {p['top_overlap']}/{p['top_k']}"
                )
            print("  " + rep["verdict"])
        record["throughput"] = throughput(record["budgets"][0]["report"]["architectures"], tokens, args)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"proxy-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(record, indent=2))
    print(f"\nraw results: {path}")


if __name__ == "__main__":
    main()
