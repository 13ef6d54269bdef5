"""Typed config objects with defaults, loaded from YAML/JSON files and flags; unknown keys are errors."""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from lts_cli import objectives as objectives_registry
from lts_cli.errors import ConfigError, LtsError, UsageError, invalid
from lts_cli.space import SearchSpace

T = TypeVar("T")


def load_file(path: Path) -> Any:
    """Parse a .yaml/.yml/.json file; every failure names the file and says what to fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise LtsError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise LtsError(f"{path}: is a folder, expected a .yaml or .json file") from exc
    except UnicodeDecodeError as exc:
        raise LtsError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise LtsError(f"{path}: cannot read ({exc.strerror})") from exc
    suffix = path.suffix.lower()
    if suffix in (".json", ".yaml", ".yml") and not _has_content(text, suffix):
        raise LtsError(f"{path}: the file is empty; write the settings into it, or leave it out to use the defaults")
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise LtsError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise LtsError(f"{path}: invalid YAML{where}: {problem}") from exc
    raise LtsError(f"{path}: unsupported file type {suffix or '(none)'}; use .yaml, .yml or .json")


def _has_content(text: str, suffix: str) -> bool:
    """Whether a file says anything at all (YAML comments and `---` markers say nothing)."""
    if suffix == ".json":
        return bool(text.strip())
    lines = (line.strip() for line in text.splitlines())
    return any(line and not line.startswith("#") and line not in ("---", "...") for line in lines)


def load_mapping(path: Path) -> dict[str, Any]:
    data = load_file(path)
    if not isinstance(data, dict):
        raise LtsError(f"{path}: expected a mapping of keys to values at the top level, got {type(data).__name__}")
    return data


def from_mapping(cls: type[T], data: Mapping[str, Any], source: str) -> T:
    """Build dataclass `cls` from `data`, checking every key and type; `source` names where it came from."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if not isinstance(data, Mapping):
        raise LtsError(f"{source}: expected a mapping of keys to values, got {type(data).__name__}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(fields)}"
            raise LtsError(f"{source}: unknown key {key!r}{hint}")
        hint_type = hints[key]
        if isinstance(hint_type, type) and dataclasses.is_dataclass(hint_type):
            # A nested section overrides the field's own default, key by key.
            factory: Any = fields[key].default_factory
            where = f"{source}: {key}" if ":" not in source else f"{source}.{key}"
            try:
                values[key] = from_mapping(hint_type, {**as_plain(factory()), **_mapping(value, where)}, where)
            except ConfigError as exc:
                raise exc.nested(key) from exc
        else:
            values[key] = _check_type(value, hint_type, f"{source}: {key}")
    return cls(**values)  # a ConfigError names its fields relative to `cls`; the caller says where


def from_file(cls: type[T], path: Path, defaults: dict[str, Any] | None = None) -> T:
    """A config object from a YAML/JSON file (over `defaults` of top-level keys, if given); every
    error names the file and the key."""
    try:
        return from_mapping(cls, {**(defaults or {}), **load_mapping(path)}, str(path))
    except ConfigError as exc:
        raise LtsError(f"{path}: {exc}") from exc


def replace(obj: T, **changes: Any) -> T:
    """`dataclasses.replace` that skips None (flags not given), type-checks what is set, and takes
    dotted keys for nested sections (`measure.seq_len`)."""
    merged = as_plain(obj)
    for key, value in changes.items():
        if value is None:
            continue
        *parents, leaf = key.split(".")
        target = merged
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return from_mapping(type(obj), merged, "command line")


def flag_name(field: str) -> str:
    """The command-line flag of a config field: `measure.seq_len` -> `--seq-len`."""
    return "--" + field.rsplit(".", 1)[-1].replace("_", "-")


def as_plain(obj: Any) -> Any:
    """A config object as plain data (dicts, lists, scalars) for YAML/JSON; compact ranges."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: as_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        items = list(obj)
        if len(items) > 3 and all(isinstance(i, int) for i in items):
            steps = {b - a for a, b in itertools.pairwise(items)}
            if len(steps) == 1 and steps.pop() > 0:
                return {"min": items[0], "max": items[-1], "step": items[1] - items[0]}
        return items
    return obj


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise LtsError(f"{where} must be a mapping of keys to values, got {value!r}")
    return value


def _check_type(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise LtsError(f"{where} must be one of {', '.join(map(str, choices))}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _check_type(value, inner, where)
    if origin is tuple:
        (item,) = typing.get_args(hint)[:1]
        return tuple(_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(_sequence(value, where)))
    if hint is bool:
        if not isinstance(value, bool):
            raise LtsError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise LtsError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e6 as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LtsError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise LtsError(f"{where} must be a string, got {value!r}")
        return value
    return value


def _sequence(value: Any, where: str) -> list[Any]:
    """A list, or for integer choices a range written as {min, max, step}."""
    if isinstance(value, Mapping):
        unknown = set(value) - {"min", "max", "step"}
        if unknown or not {"min", "max"} <= set(value):
            raise LtsError(f"{where} must be a list or a range {{min: .., max: .., step: ..}}, got {dict(value)}")
        lo, hi, step = value["min"], value["max"], value.get("step", 1)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi, step)) or step < 1 or hi < lo:
            raise LtsError(f"{where}: a range needs integers with min <= max and step >= 1, got {dict(value)}")
        return list(range(lo, hi + 1, step))
    if isinstance(value, (list, tuple)):
        if not value:
            raise LtsError(f"{where} must not be empty")
        return list(value)
    raise LtsError(f"{where} must be a list, got {value!r}")


def _at_least(obj: Any, minimum: float, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value < minimum:
            raise invalid(name, f"must be at least {minimum:g}", value)


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not value > 0:
            raise invalid(name, "must be greater than 0", value)


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
    decode_context: int = 512  # the decode_latency objective: tokens in the KV cache

    def __post_init__(self) -> None:
        _at_least(self, 1, "batch_size", "seq_len", "threads", "trials", "min_trials", "decode_context")
        _at_least(self, 0, "warmup")
        if not 0 < self.target_ci < 1:
            raise invalid("target_ci", "is a relative half-width between 0 and 1 (0.03 for 3%)", self.target_ci)

    def prefill_key(self) -> dict[str, Any]:
        """The settings a prefill measurement depends on (its cache key and record)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "decode_context"}

    def decode_key(self) -> dict[str, Any]:
        """The settings a decode measurement depends on (no prefill graph or sequence length)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("graph", "seq_len")}

    @property
    def fewest_trials(self) -> int:
        """The runs adaptive timing takes before it may stop."""
        return min(self.min_trials, self.trials)

    def trials_note(self) -> str | None:
        """What to tell the user when --trials overrides the adaptive minimum."""
        if self.adaptive and self.trials < self.min_trials:
            return (
                f"--trials {self.trials} is below the adaptive minimum of {self.min_trials} runs: "
                f"each architecture gets {self.trials} timed run(s)"
            )
        return None

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


def _search_measure() -> MeasureSettings:
    # The search stops timing an architecture once its mean is known to +-3% (95% CI), after at
    # least 5 and at most 25 runs; benchmarks/bench_search.py measures how well that repeats.
    return MeasureSettings(adaptive=True)


@dataclass(frozen=True)
class SearchConfig:
    """The Lightweight Transformer Search; defaults are the published ones (configs/search.yaml)."""

    generations: int = 10
    init_models: int = 10
    mutations_per_parent: int = 1
    crossovers: int = 5
    random_mix: int = 5
    max_unseen: int = 100
    seed: int = 1
    min_params: float = 1e6
    max_params: float = 1e9
    patience: int = 20
    objectives: tuple[str, ...] = objectives_registry.DEFAULT
    space: SearchSpace = dataclasses.field(default_factory=SearchSpace)
    measure: MeasureSettings = dataclasses.field(default_factory=_search_measure)
    screen: bool = False  # propose more, predict latency, measure only what could reach the front
    screen_factor: int = 10  # proposals per generation, as a multiple of a plain generation's
    screen_measure: float = 0.2  # measure at most this share of what a plain generation would
    screen_explore: float = 0.1  # also measure this share (of those chosen) at random, for exploration

    def __post_init__(self) -> None:
        _at_least(self, 1, "generations", "init_models", "max_unseen", "patience")
        _at_least(self, 0, "mutations_per_parent", "crossovers", "random_mix", "min_params")
        _positive(self, "max_params")
        if self.generations > 1 and self.mutations_per_parent + self.crossovers + self.random_mix == 0:
            raise ConfigError(
                ["mutations_per_parent", "crossovers", "random_mix"],
                "{0}, {1} and {2} are all 0: generations after the first would be empty",
            )
        if self.min_params > self.max_params:
            raise ConfigError(
                ["min_params", "max_params"],
                f"{{0}} ({self.min_params:g}) is larger than {{1}} ({self.max_params:g})",
            )
        objectives_registry.check(self.objectives)
        _at_least(self, 2, "screen_factor")
        if not 0 <= self.screen_explore <= 1:
            raise invalid("screen_explore", "must be between 0 and 1", self.screen_explore)
        if not 0 < self.screen_measure <= 1:
            raise invalid("screen_measure", "must be greater than 0 and at most 1", self.screen_measure)
        unpredictable = [
            o
            for o in self.objectives
            if objectives_registry.get(o).kind == "measured" and o not in objectives_registry.PREDICTABLE
        ]
        if self.screen and unpredictable:
            raise ConfigError(
                ["screen", "objectives"],
                f"{{0}} predicts latencies only, and {{1}} has {', '.join(unpredictable)}: drop it, or screening",
            )
        if "decode_latency" in self.objectives and self.measure.decode_context >= self.space.n_positions:
            raise ConfigError(
                ["measure.decode_context", "space.n_positions"],
                f"{{0}} ({self.measure.decode_context}) leaves no room for a new token within {{1}} "
                f"({self.space.n_positions})",
            )
        if self.measure.seq_len > self.space.n_positions:
            raise ConfigError(
                ["measure.seq_len", "space.n_positions"],
                f"{{0}} ({self.measure.seq_len}) exceeds {{1}} ({self.space.n_positions})",
            )
        if not self.space.feasible(self.min_params, self.max_params):
            lo, hi = self.space.params_range()
            raise ConfigError(
                ["min_params", "max_params"],
                f"no architecture of the search space has between {self.min_params:g} and {self.max_params:g} "
                f"non-embedding parameters (the space spans {lo:,} to {hi:,}); widen {{0}}/{{1}}",
            )


@dataclass(frozen=True)
class TrainConfig:
    """Training with the Hugging Face Trainer; defaults are the published ones (configs/train.yaml)."""

    max_steps: int = 30000
    batch_size: int = 64  # per device
    gradient_accumulation_steps: int = 1
    seq_len: int = 1024
    lr: float = 6e-4
    weight_decay: float = 0.1
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_steps: int = 150
    max_grad_norm: float = 1.0
    dropout: float = 0.1
    eval_every: int = 500
    eval_batches: int = 0  # batches of the validation and test splits evaluated; 0: all
    save_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 10
    seed: int = 42
    threads: int = 0  # torch intra-op threads; 0: torch's default (all cores)

    def __post_init__(self) -> None:
        _at_least(self, 1, "max_steps", "batch_size", "gradient_accumulation_steps", "seq_len", "eval_every")
        _at_least(self, 1, "save_every", "log_every", "keep_checkpoints")
        _positive(self, "lr")
        _at_least(self, 0, "weight_decay", "warmup_steps", "max_grad_norm", "eval_batches", "threads")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise invalid(name, "must be in [0, 1)", getattr(self, name))
        if not 0 <= self.dropout < 1:
            raise invalid("dropout", "must be in [0, 1)", self.dropout)


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
        for name in ("max_new_tokens", "num_return_sequences"):
            if getattr(self, name) < 1:
                raise invalid(name, "must be at least 1", getattr(self, name))
        if not self.temperature > 0:
            raise invalid(
                "temperature", "must be greater than 0 (for the most likely token every time, use --greedy)",
                self.temperature,
            )  # fmt: skip
        if not 0 < self.top_p <= 1:
            raise invalid("top_p", "must be in (0, 1]", self.top_p)
        if self.top_k < 0:
            raise invalid("top_k", "must be 0 (off) or more", self.top_k)


def load_config(cls: type[T], path: Path | None = None, **flags: Any) -> T:
    """Defaults < a YAML/JSON file < the flags that were given (dotted keys such as
    `measure.seq_len` reach nested sections). A value a flag made invalid is a usage error that
    names the flag (`--seq-len`); one from the file names the file and the key."""
    return override(from_file(cls, path) if path is not None else cls(), path, **flags)


def override(settings: T, path: Path | None = None, **flags: Any) -> T:
    """`settings` with the flags that were given (not None); an invalid value a flag set is a usage
    error naming the flag, one from `path` (the file `settings` came from) names the key there."""
    try:
        return replace(settings, **flags)
    except ConfigError as exc:
        given = {key for key, value in flags.items() if value is not None}
        names = [flag_name(f) if f in given else f"{f} (in {path})" if path else f for f in exc.fields]
        raise UsageError(exc.named(names)) from exc
