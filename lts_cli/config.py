"""Typed config objects with defaults, loaded from YAML/JSON files and flags; unknown keys are errors."""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from lts_cli.errors import LtsError

T = TypeVar("T")


def load_file(path: Path) -> Any:
    """Parse a .yaml/.yml/.json file; every failure names the file and says what to fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LtsError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LtsError(f"{path}: is a folder, expected a .yaml or .json file") from None
    except UnicodeDecodeError as exc:
        raise LtsError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise LtsError(f"{path}: cannot read ({exc.strerror})") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise LtsError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise LtsError(f"{path}: invalid YAML{where}: {problem}") from None
    raise LtsError(f"{path}: unsupported file type {suffix or '(none)'}; use .yaml, .yml or .json")


def load_mapping(path: Path) -> dict[str, Any]:
    data = load_file(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LtsError(f"{path}: expected a mapping of keys to values at the top level, got {type(data).__name__}")
    return data


def from_mapping(cls: type[T], data: Mapping[str, Any], source: str) -> T:
    """Build dataclass `cls` from `data`, checking every key and type; `source` names where it came from."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(names)}"
            raise LtsError(f"{source}: unknown key {key!r}{hint}")
        values[key] = _check_type(value, hints[key], f"{source}: {key}")
    try:
        return cls(**values)
    except LtsError as exc:
        raise LtsError(f"{source}: {exc}") from None


def replace(obj: T, source: str, **changes: Any) -> T:
    """`dataclasses.replace` that skips None (flags not given) and type-checks what is set."""
    given = {k: v for k, v in changes.items() if v is not None}
    merged = {**dataclasses.asdict(obj), **given}  # type: ignore[call-overload]
    return from_mapping(type(obj), merged, source)


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
    if hint is bool:
        if not isinstance(value, bool):
            raise LtsError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise LtsError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LtsError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise LtsError(f"{where} must be a string, got {value!r}")
        return value
    return value


def _positive(name: str, value: int | float) -> None:
    if value <= 0:
        raise LtsError(f"{name} must be positive, got {value}")


@dataclass(frozen=True)
class MeasureSettings:
    """How an architecture is measured; every field is part of the cache key.

    Defaults are the published objective (archai's text-generation search): ONNX Runtime on the
    CPU, batch 1, sequence 1024, no KV cache, next-token graph, 1 intra-op thread, graph
    optimization level ALL, 2 warm-up runs, then 25 timed runs (archai: 5 repeats of 5).
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

    def __post_init__(self) -> None:
        for name in ("batch_size", "seq_len", "threads", "trials", "min_trials"):
            _positive(name, getattr(self, name))
        if self.warmup < 0:
            raise LtsError(f"warmup must be 0 or more, got {self.warmup}")
        if not 0 < self.target_ci < 1:
            raise LtsError(f"target_ci is a relative half-width (e.g. 0.03 for 3%), got {self.target_ci}")
        if self.adaptive and self.min_trials > self.trials:
            raise LtsError(f"min_trials ({self.min_trials}) is larger than trials ({self.trials})")

    def describe(self) -> str:
        runs = (
            f"{self.min_trials}-{self.trials} runs (adaptive, 95% CI <= {self.target_ci:.0%})"
            if self.adaptive
            else f"{self.trials} runs"
        )
        return (
            f"{self.graph} graph, batch {self.batch_size}, seq {self.seq_len}, {self.threads} thread(s), "
            f"opt {self.opt_level}, {self.warmup} warm-up + {runs}"
        )


def measure_settings(config: Path | None = None, **flags: Any) -> MeasureSettings:
    """Defaults, overridden by a YAML/JSON file of settings, overridden by the flags that were given."""
    settings = MeasureSettings()
    if config is not None:
        settings = from_mapping(MeasureSettings, load_mapping(config), str(config))
    return replace(settings, "command line", **flags)
