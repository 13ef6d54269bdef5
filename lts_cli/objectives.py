"""The one registry of objectives: what each means, which way is better, how its value is obtained
(from the architecture, the exact size of its ONNX file, a prefill or a decode measurement), how it
is shown, and how it is bounded for the hypervolume (pure).

Nothing outside this module names an objective: callers iterate the registry. Adding one is one
entry here (and its test). A value is *exact* (computed from the architecture: parameter counts,
file sizes, FLOPs, cache bytes) or *measured* on a machine (latencies, resident memory); a
*predicted* value (the latency model) is never reported as a measurement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from lts_cli.errors import UsageError, invalid
from lts_cli.settings import Kind, MeasureSettings
from lts_cli.space import Arch, forward_flops

MIB = 2**20
Source = Literal["arch", "size", "prefill", "decode"]


class Timed(Protocol):
    """What a measurement gives an objective: its median latency and the session's peak RSS."""

    latency_s: float
    peak_rss_mib: float


class Inputs(Protocol):
    """Everything an objective's value can come from, for one architecture and one set of settings."""

    arch: Arch
    settings: MeasureSettings

    def measured(self, kind: Kind) -> Timed: ...

    def file_bytes(self, dtype: str) -> int: ...


@dataclass(frozen=True)
class Objective:
    name: str  # also the CSV column and the key in every record
    maximize: bool
    unit: str  # params | s | MiB | FLOP
    label: str  # axis and column label
    short: str  # in file names and narrow tables
    source: Source  # arch and size: exact; prefill and decode: measured
    describe: str  # one line for --help, README and summary.json
    value: Callable[[Inputs], float]
    # What the value grows with, for the hypervolume bound (see `bounds`): the value itself for
    # exact ones, FLOPs for latencies, stored bytes for memory.
    grows_with: Callable[[Arch, MeasureSettings], float]
    predictable: bool = False  # the per-machine latency model predicts it (predictor.py)
    quality_proxy: bool = False  # a cheap proxy of quality that `lts proxy` checks against training
    always: bool = False  # recorded for every architecture, chosen or not
    # Why the value cannot be had for an architecture under these settings (None: it can).
    unavailable: Callable[[Arch, MeasureSettings], str | None] = lambda arch, settings: None
    published: tuple[str, float] | None = None  # the gallery's published figure: its key, and its unit here

    def published_value(self, figures: dict[str, float] | None) -> float | None:
        """This objective's value in the gallery's published figures, if they have it."""
        if self.published is None or not figures or self.published[0] not in figures:
            return None
        return figures[self.published[0]] * self.published[1]

    @property
    def kind(self) -> Literal["exact", "measured"]:
        return "measured" if self.source in ("prefill", "decode") else "exact"

    def scaled(self, value: float) -> float:
        """For tables and plots: parameters in millions, FLOPs in billions, everything else as is."""
        return value / _SCALE[self.unit][0] if self.unit in _SCALE else value

    def header(self) -> str:
        return f"{self.short} {_SCALE[self.unit][1] if self.unit in _SCALE else self.unit}"

    def format(self, value: float | None) -> str:
        """The value as tables show it: 1.06 (M params), 0.0123 (s), 29.07 (MiB), 4.10 (G FLOPs)."""
        if value is None:
            return "-"
        if self.unit == "s":
            return f"{value:.4f}" if value < 1 else f"{value:.3f}"
        return f"{self.scaled(value):.2f}"


_SCALE = {"params": (1e6, "M"), "FLOP": (1e9, "G")}


def _prefill_flops(arch: Arch, s: MeasureSettings) -> float:
    return float(forward_flops(arch, s.seq_len, s.batch_size, last_position_head=not s.full_logits))


def _decode_flops(arch: Arch, s: MeasureSettings) -> float:
    """One new token against a cache of `decode_context`: projections, attention, LM head."""
    d, di = arch.d_model, arch.d_inner
    per_layer = 2 * (4 * d * d + 2 * d * di) + 4 * (s.decode_context + 1) * d
    return float(s.batch_size * (arch.n_layer * per_layer + 2 * d * arch.vocab_size))


def _no_room(arch: Arch, s: MeasureSettings) -> str | None:
    """A KV cache of `decode_context` tokens must leave room for a new one within the model's context."""
    if s.decode_context < arch.n_positions:
        return None
    return (
        f"a decode context of {s.decode_context} leaves no room for a new token within the model's "
        f"n_positions ({arch.n_positions}); one of at most {arch.n_positions - 1} does"
    )


def _kv_cache_bytes(arch: Arch, s: MeasureSettings) -> float:
    """Keys and values of every layer for `decode_context` tokens, fp32: 2 x L x B x context x d x 4."""
    return float(2 * arch.n_layer * s.batch_size * s.decode_context * arch.d_model * 4)


REGISTRY: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective(
            "non_embedding_params", True, "params", "non-embedding parameters (millions)", "params", "arch",
            "parameters except token and position embeddings (the quality proxy; maximized)",
            lambda i: float(i.arch.non_embedding_params), lambda a, s: float(a.non_embedding_params),
            quality_proxy=True, always=True, published=("non_embedding_params_m", 1e6),
        ),
        Objective(
            "total_params", True, "params", "total parameters, tied head once (millions)", "total_params", "arch",
            "every stored parameter, the tied LM head once",
            lambda i: float(i.arch.unique_params), lambda a, s: float(a.unique_params), quality_proxy=True,
        ),
        Objective(
            "forward_flops", False, "FLOP", "forward FLOPs (billions; prefill of seq_len tokens)", "flops", "arch",
            "multiply-add FLOPs (x2) of one prefill of seq_len tokens: projections, attention, LM head",
            lambda i: _prefill_flops(i.arch, i.settings), _prefill_flops, quality_proxy=True,
        ),
        Objective(
            "onnx_latency", False, "s", "ONNX latency (s, median, prefill)", "latency", "prefill",
            "ONNX Runtime prefill latency: seq_len tokens, LM head on the last position (the published objective)",
            lambda i: i.measured("prefill").latency_s, _prefill_flops, predictable=True, published=("latency_s", 1.0),
        ),
        Objective(
            "decode_latency", False, "s", "decode latency per token (s, median, KV cache)", "decode", "decode",
            "ONNX Runtime latency of one new token with a KV cache of decode_context tokens",
            lambda i: i.measured("decode").latency_s, _decode_flops, predictable=True, unavailable=_no_room,
        ),
        Objective(
            "onnx_memory", False, "MiB", "ONNX memory (MiB, file size)", "memory", "size",
            "size of the single-file fp32 ONNX model (the published objective)",
            lambda i: i.file_bytes("fp32") / MIB, lambda a, s: 4.0 * a.unique_params, always=True,
            published=("memory_mib", 1.0),
        ),
        Objective(
            "onnx_memory_int8", False, "MiB", "ONNX memory, int8 (MiB, file size)", "memory_int8", "size",
            "size of the same model with int8 weights (lts export --quantize int8's scheme)",
            lambda i: i.file_bytes("int8") / MIB, lambda a, s: float(a.unique_params),
        ),
        Objective(
            "kv_cache_memory", False, "MiB", "KV cache memory (MiB, fp32, decode_context tokens)", "kv_cache", "arch",
            "bytes of the keys and values a decode keeps for decode_context tokens (what bounds long contexts)",
            lambda i: _kv_cache_bytes(i.arch, i.settings) / MIB, lambda a, s: _kv_cache_bytes(a, s) / MIB,
            unavailable=_no_room,
        ),
        Objective(
            "peak_rss", False, "MiB", "peak RSS while running (MiB)", "peak_rss", "prefill",
            "peak resident memory of the ONNX Runtime session above the process baseline (prefill run)",
            lambda i: i.measured("prefill").peak_rss_mib, lambda a, s: 4.0 * a.unique_params,
        ),
    )
}  # fmt: skip

DEFAULT = ("non_embedding_params", "onnx_latency", "onnx_memory")  # the published search
QUALITY = "non_embedding_params"  # the search's stand-in for quality, which tables sort by
PREDICTABLE = tuple(name for name, o in REGISTRY.items() if o.predictable)


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
    """A comma-separated list as a tuple of known names (`check` adds the search's own rules)."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in REGISTRY]
    if unknown or not names:
        raise UsageError(
            f"--objectives: {unknown[0] if unknown else text!r} is not an objective; choose from {', '.join(REGISTRY)}"
        )
    return names


def kinds(names: Sequence[str]) -> list[Kind]:
    """The kinds of measurement `names` need, in the order they are measured."""
    needed = {get(n).source for n in names}
    return [kind for kind in ("prefill", "decode") if kind in needed]


def recorded(names: Sequence[str], measured: Sequence[Kind]) -> list[Objective]:
    """What is recorded for an architecture: the chosen objectives, those recorded always, and every
    other value the measurements that were made give (peak RSS with a prefill timing, ...)."""
    return [o for o in REGISTRY.values() if o.name in names or o.always or o.source in measured]


def values(inputs: Inputs, names: Sequence[str], measured: Sequence[Kind]) -> dict[str, float]:
    return {o.name: o.value(inputs) for o in recorded(names, measured)}


def fitting(arch: Arch, settings: MeasureSettings, requested: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """What can be had for `arch`: the objectives asked for (all of them when None), less those that
    do not fit it under `settings`, and a note for each left out."""
    chosen, notes = [], []
    for name in requested if requested is not None else list(REGISTRY):
        why = get(name).unavailable(arch, settings)
        if why is None:
            chosen.append(name)
        else:
            notes.append(f"{name} left out: {why}")
    return chosen, notes


def bounds(
    names: Sequence[str],
    largest: Arch,
    max_params: float,
    measured: Sequence[tuple[Arch, dict[str, float]]],
    settings: MeasureSettings,
) -> dict[str, float]:
    """Hypervolume normalization: each objective's value for the largest architecture of the space.

    Maximized parameter counts: the largest architecture's count (the quality proxy capped at
    max_params). Everything else: its worst value-per-growth among `measured` (generation 1) times the
    growth of the largest architecture, which keeps every later architecture inside the box.
    """
    out = {}
    for name in names:
        o = get(name)
        top = o.grows_with(largest, settings)
        if o.maximize:
            out[name] = min(top, max_params) if name == QUALITY else top
        else:
            out[name] = max(v[name] / o.grows_with(a, settings) for a, v in measured) * top
    return out
