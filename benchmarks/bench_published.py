"""`make bench-published`: the task's "download a gallery model and generate" path at full size, offline.

Builds a Hugging Face cache laid out like `microsoft/lts-gpt2-sm` (tests/hubfakes.py) with a 4-layer
published checkpoint as it really is: GPT-2-small widths, a pickled 275.1 MB `pytorch_model.bin` with
the legacy uint8 masks, the root tokenizer (random weights: the sizes, names and formats are the real
ones). Then runs, as a user would, each in a fresh process with HF_HUB_OFFLINE=1:

    lts gallery pull gpt2_a9e3
    lts models show gpt2_a9e3 --json
    lts generate gpt2_a9e3 "ROMEO:" --max-new-tokens 32
    lts export gpt2_a9e3 --quantize int8 --json
    lts generate gpt2_a9e3 "ROMEO:" --backend onnx --max-new-tokens 32

and prints each one's wall time and peak RSS, the weight file's size, what `models show` reports and
the int8 export's validation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import run_lts

A9E3 = "gpt2_a9e3147996070fda25af4b39ed95b6a18d6d0402"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="lts-bench-published-") as tmp:
        root = Path(tmp)
        os.environ["HF_HUB_CACHE"] = str(root / "cache")
        os.environ["HF_HUB_OFFLINE"] = "1"
        start = time.perf_counter()
        # In its own process: a forked child would count this one's memory (torch) in its peak RSS.
        build = (
            "from pathlib import Path; from tests.hubfakes import published_repo; "
            f"published_repo(Path({str(root / 'cache')!r}), Path({str(root / 'work')!r}), {A9E3!r}, n_layer=4)"
        )
        subprocess.run([sys.executable, "-c", build], check=True, cwd=Path(__file__).resolve().parent.parent)
        snapshot = next((root / "cache").glob("models--*/snapshots/*"))
        weights = (snapshot / A9E3 / "pytorch_model.bin").stat().st_size
        print(f"built the cache in {time.perf_counter() - start:.1f} s: pytorch_model.bin {weights / 1e6:.1f} MB")
        home = str(root / "home")
        steps = [
            ("gallery pull", ["gallery", "pull", "gpt2_a9e3"]),
            ("models show", ["models", "show", "gpt2_a9e3", "--json"]),
            ("generate (torch)", ["generate", "gpt2_a9e3", "ROMEO:", "--max-new-tokens", "32", "--seed", "1"]),
            ("export int8", ["export", "gpt2_a9e3", "--quantize", "int8", "--json"]),
            ("generate (onnx)", ["generate", "gpt2_a9e3", "ROMEO:", "--backend", "onnx", "--max-new-tokens", "32"]),
        ]
        print(f"{'command':<18} {'wall s':>8} {'peak RSS MiB':>13}")
        outputs = {}
        for label, args in steps:
            out, wall, peak, _ = run_lts(home, *args)
            outputs[label] = out
            print(f"{label:<18} {wall:>8.1f} {peak:>13.0f}")
        shown = json.loads(outputs["models show"])
        print(
            f"models show: n_embd {shown['config']['n_embd']}, n_layer {shown['config']['n_layer']}, "
            f"non-embedding params {shown['non_embedding_params']:,}, published as {shown['detail']['published_as']}"
        )
        print(f"  {shown['detail']['differences']}")
        v = json.loads(outputs["export int8"])["validation"]
        print(
            f"export int8: perplexity fp32 {v['fp32_perplexity']:.1f}, int8 {v['int8_perplexity']:.1f} "
            f"({v['perplexity_increase']:+.2%}; random weights)"
        )


if __name__ == "__main__":
    main()
