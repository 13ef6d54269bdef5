"""The one registry of objectives: what each one means, which way is better, where its value comes
from, how tables, CSVs and plots name it, and how it is bounded for the hypervolume (pure).

Adding an objective is one entry here plus, for a new kind of measurement, the code that measures
it (evaluation.py). A value is *exact* (computed from the architecture: parameter counts, file
sizes), *measured* on this machine (latencies, resident memory), or *predicted* (later: a latency
model); predictions are never reported as measurements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from lts_cli.errors import UsageError, invalid
from lts_cli.space import Arch, forward_flops

Kind = Literal["exact", "measured", "predicted"]
# Where a value comes from: the architecture itself, the exact size of its ONNX file, the prefill
# measurement (the published latency protocol) or the decode measurement (one token with a KV cache).
Source = Literal["arch", "size", "prefill", "decode"]


@dataclass(frozen=True)
class Shape:
    """The measurement settings a latency proxy depends on."""

    seq_len: int = 1024
    batch_size: int = 1
    decode_context: int = 512
    full_logits: bool = False  # the "logits" graph: the LM head over every position


@dataclass(frozen=True)
class Objective:
    name: str  # also the CSV column and the key in every record
    maximize: bool
    unit: str
    label: str  # axis and column label
    short: str  # in file names and narrow tables
    kind: Kind
    source: Source
    describe: str  # one line for --help, README and summary.json
    # What the value grows with, for the hypervolume bound (see `bounds`): the value itself for
    # parameter counts, FLOPs for latencies, stored bytes for memory.
    proxy: Callable[[Arch, Shape], float]

    def scaled(self, value: float) -> float:
        """For tables and plots: parameters in millions, everything else as is."""
        return value / 1e6 if self.unit == "params" else value


def _prefill_flops(arch: Arch, shape: Shape) -> float:
    return float(forward_flops(arch, shape.seq_len, shape.batch_size, last_position_head=not shape.full_logits))


def _decode_flops(arch: Arch, shape: Shape) -> float:
    """One new token against a cache of `decode_context`: projections, attention, LM head."""
    d, di = arch.d_model, arch.d_inner
    per_layer = 2 * (4 * d * d + 2 * d * di) + 4 * (shape.decode_context + 1) * d
    return float(shape.batch_size * (arch.n_layer * per_layer + 2 * d * arch.vocab_size))


REGISTRY: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective(
            "non_embedding_params", True, "params", "non-embedding parameters (millions)", "params", "exact", "arch",
            "parameters except token and position embeddings (the quality proxy; maximized)",
            lambda a, shape: float(a.non_embedding_params),
        ),
        Objective(
            "total_params", True, "params", "total parameters, tied head once (millions)", "total_params", "exact",
            "arch", "every stored parameter, the tied LM head once",
            lambda a, shape: float(a.unique_params),
        ),
        Objective(
            "onnx_latency", False, "s", "ONNX latency (s, median, prefill)", "latency", "measured", "prefill",
            "ONNX Runtime prefill latency: seq_len tokens, LM head on the last position (the published objective)",
            _prefill_flops,
        ),
        Objective(
            "decode_latency", False, "s", "decode latency per token (s, median, KV cache)", "decode", "measured",
            "decode", "ONNX Runtime latency of one new token with a KV cache of decode_context tokens",
            _decode_flops,
        ),
        Objective(
            "onnx_memory", False, "MiB", "ONNX memory (MiB, file size)", "memory", "exact", "size",
            "size of the single-file fp32 ONNX model (the published objective)",
            lambda a, shape: 4.0 * a.unique_params,
        ),
        Objective(
            "onnx_memory_int8", False, "MiB", "ONNX memory, int8 (MiB, file size)", "memory_int8", "exact", "size",
            "size of the same model with int8 weights (lts export --quantize int8's scheme)",
            lambda a, shape: float(a.unique_params),
        ),
        Objective(
            "peak_rss", False, "MiB", "peak RSS while running (MiB)", "peak_rss", "measured", "prefill",
            "peak resident memory of the ONNX Runtime session above the process baseline (prefill run)",
            lambda a, shape: 4.0 * a.unique_params,
        ),
    )
}  # fmt: skip

DEFAULT = ("non_embedding_params", "onnx_latency", "onnx_memory")  # the published search
PREDICTABLE = ("onnx_latency", "decode_latency")  # the latencies the per-machine model predicts (predictor.py)


def get(name: str) -> Objective:
    try:
        return REGISTRY[name]
    except KeyError:
        raise invalid("objectives", f"must be chosen from {', '.join(REGISTRY)}", name) from None


def check(names: Sequence[str]) -> None:
    """At least two different objectives, all of them known (errors name the `objectives` field)."""
    for name in names:
        get(name)
    if len(set(names)) != len(names) or len(names) < 2:
        raise invalid("objectives", "must name at least two different objectives", list(names))


def parse(text: str) -> tuple[str, ...]:
    """`--objectives a,b,c` as a tuple of known names (`check` adds the search's own rules)."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in REGISTRY]
    if unknown or not names:
        raise UsageError(
            f"--objectives: {unknown[0] if unknown else text!r} is not an objective; choose from {', '.join(REGISTRY)}"
        )
    return names


def sources(names: Sequence[str]) -> set[Source]:
    return {get(n).source for n in names}


def bounds(
    names: Sequence[str],
    largest: Arch,
    max_params: float,
    measured: Sequence[tuple[Arch, dict[str, float]]],
    shape: Shape,
) -> dict[str, float]:
    """Hypervolume normalization: each objective's value for the largest architecture of the space.

    Maximized parameter counts: the largest architecture's count (non-embedding ones capped at
    max_params). Everything else: its worst value-per-proxy among `measured` (generation 1) times the
    proxy of the largest architecture, which keeps every later architecture inside the box.
    """
    out = {}
    for name in names:
        o = get(name)
        top = o.proxy(largest, shape)
        if o.maximize:
            out[name] = min(top, max_params) if name == "non_embedding_params" else top
        else:
            out[name] = max(v[name] / o.proxy(a, shape) for a, v in measured) * top
    return out
