"""How an architecture is measured on ONNX Runtime (`MeasureSettings`, every field part of the cache
key) and what a measurement records (`Measurement`, read back from the cache with every type checked)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from lts_cli.config import at_least
from lts_cli.errors import LtsError, invalid
from lts_cli.machine import Fingerprint
from lts_cli.views import JsonObject

Kind = Literal["prefill", "decode"]  # the two kinds of measurement
SettingsKey = dict[str, Any]  # the settings a measurement depends on, as JSON (MeasureSettings.key)


@dataclass(frozen=True)
class MeasureSettings:
    """How an architecture is measured; every field is part of the cache key.

    Defaults are the published objective (archai's text-generation search): ONNX Runtime on the
    CPU, batch 1, sequence 1024, no KV cache, next-token graph, 1 intra-op thread, graph
    optimization level ALL, 2 warm-up runs, then 25 timed runs (archai: 5 repeats of 5).
    Adaptive timing stops once the mean's 95% CI is within `target_ci`, after at least
    `min_trials` runs (or all `trials`, when there are fewer).
    """

    graph: Literal["next-token", "logits"] = "next-token"
    batch_size: int = 1
    seq_len: int = 1024
    threads: int = 1
    opt_level: Literal["disable", "basic", "extended", "all"] = "all"
    warmup: int = 2
    trials: int = 25
    adaptive: bool = False
    min_trials: int = 5
    target_ci: float = 0.03
    provider: str = "CPUExecutionProvider"
    decode_context: int = 512  # decode measurements: tokens in the KV cache

    HELP: ClassVar[dict[str, str]] = {  # the fields a command line sets, in one sentence each (--help)
        "seq_len": "Prefill tokens (the gallery was published at 192).",
        "batch_size": "Batch size.",
        "threads": "ONNX Runtime intra-op threads.",
        "trials": "Timed runs (the most with --adaptive).",
        "warmup": "Untimed warm-up runs.",
        "graph": "next-token (published: LM head on the last position only) or logits.",
        "opt_level": "ONNX Runtime graph optimization.",
        "adaptive": "Stop timing once the mean's 95% CI is within --target-ci.",
        "min_trials": "Runs before --adaptive may stop.",
        "target_ci": "Relative CI half-width for --adaptive.",
        "decode_context": "KV cache tokens of decode measurements.",
    }

    def __post_init__(self) -> None:
        at_least(self, 1, "batch_size", "seq_len", "threads", "trials", "min_trials", "decode_context")
        at_least(self, 0, "warmup")
        if not 0 < self.target_ci < 1:
            raise invalid("target_ci", "is a relative half-width between 0 and 1 (0.03 for 3%)", self.target_ci)

    def key(self, kind: Kind) -> SettingsKey:
        """The settings a measurement of `kind` depends on (its cache key and record): a prefill
        measurement has no decode context; a decode one no prefill graph or sequence length."""
        left_out = ("decode_context",) if kind == "prefill" else ("graph", "seq_len")
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in left_out}

    @property
    def full_logits(self) -> bool:
        """The "logits" graph: the LM head over every position (the published one: the last only)."""
        return self.graph == "logits"

    @property
    def fewest_trials(self) -> int:
        """The runs adaptive timing takes before it may stop."""
        return min(self.min_trials, self.trials)

    def describe(self) -> str:
        runs = (
            f"{self.fewest_trials}-{self.trials} runs (adaptive, 95% CI <= {self.target_ci:.0%})"
            if self.adaptive
            else f"{self.trials} runs"
        )
        return (
            f"{self.graph} graph, batch {self.batch_size}, seq {self.seq_len}, {self.threads} thread(s), "
            f"opt {self.opt_level}, {self.warmup} warm-up + {runs}"
        )


@dataclass
class Measurement:
    """One architecture measured on one machine with one set of settings.

    kind "prefill": the published protocol, `seq_len` tokens through the `graph` graph.
    kind "decode": one new token with a KV cache of `decode_context` tokens (the with-past graph).
    """

    archid: str
    arch: dict[str, int]
    settings: SettingsKey
    fingerprint: Fingerprint
    non_embedding_params: int
    latency_s: float  # the objective: median of the timed runs
    latency_mean_s: float
    latency_cv: float
    latency_ci95_rel: float | None
    latency_min_s: float
    runs: int
    stop: str  # fixed | converged | max-trials
    memory_mib: float  # size of the single-file ONNX model of the measured graph
    file_bytes: int
    peak_rss_mib: float  # peak resident memory above the process baseline: weights + session + runs
    peak_rss_method: str
    build_s: float
    session_s: float
    timing_s: float
    load_avg: float  # 1-minute load average when the timing started (noise context)
    measured_at: str
    cached: bool = False
    kind: Kind = "prefill"

    @property
    def overhead_s(self) -> float:
        return self.build_s + self.session_s

    def to_dict(self) -> JsonObject:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any, source: str = "a cached measurement") -> Measurement:
        """A stored measurement, every field checked for its type (keys it does not know are left
        out: rows written by other versions); a row of the wrong shape is an LtsError naming what."""
        from lts_cli.config import from_mapping

        if not isinstance(data, dict):
            raise LtsError(f"{source} is not a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        found = from_mapping(cls, {k: v for k, v in data.items() if k in names}, source)
        if not found.latency_s > 0:
            raise LtsError(f"{source}: latency_s must be a positive number of seconds, got {found.latency_s!r}")
        return found
