"""Loading typed config objects (dataclasses with defaults, defined beside what they configure) from
YAML/JSON files and flags: every key and type checked, unknown keys are errors that name the file."""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from lts_cli.errors import ConfigError, LtsError, invalid
from lts_cli.views import JsonObject

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


def load_mapping(path: Path) -> JsonObject:
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
    values: JsonObject = {}
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
    missing = [name for name, f in fields.items() if name not in values and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]  # fmt: skip
    if missing:
        raise LtsError(f"{source}: missing {', '.join(missing)}")
    return cls(**values)  # a ConfigError names its fields relative to `cls`; the caller says where


def from_file(cls: type[T], path: Path, defaults: JsonObject | None = None) -> T:
    """A config object from a YAML/JSON file (over `defaults` of top-level keys, if given); every
    error names the file and the key."""
    try:
        return from_mapping(cls, {**(defaults or {}), **load_mapping(path)}, str(path))
    except ConfigError as exc:
        raise LtsError(f"{path}: {exc}") from exc


def updated(obj: T, **changes: Any) -> T:
    """`dataclasses.replace` that skips None (a flag not given) and type-checks what is set; a nested
    section takes a mapping of its own changes (`measure={"seq_len": 64}`). An invalid value raises
    ConfigError naming the field (`measure.seq_len`), for the caller to name as the user gave it."""
    merged = as_plain(obj)
    for key, value in changes.items():
        if isinstance(value, Mapping):
            merged[key].update({k: v for k, v in value.items() if v is not None})
        elif value is not None:
            merged[key] = value
    return from_mapping(type(obj), merged, "command line")


def load(cls: type[T], path: Path | None = None, **changes: Any) -> T:
    """Defaults < a YAML/JSON file (errors name the file and key) < `changes` (see `updated`)."""
    return updated(from_file(cls, path) if path is not None else cls(), **changes)


def given(changes: Mapping[str, Any], prefix: str = "") -> set[str]:
    """The dotted names of the fields `changes` sets (not None), as ConfigError names them."""
    out = set()
    for key, value in changes.items():
        if isinstance(value, Mapping):
            out |= given(value, f"{prefix}{key}.")
        elif value is not None:
            out.add(f"{prefix}{key}")
    return out


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
    if origin is dict:
        if not isinstance(value, Mapping):
            raise LtsError(f"{where} must be a mapping, got {value!r}")
        item = typing.get_args(hint)[1]
        return {k: _check_type(v, item, f"{where}.{k}") for k, v in value.items()}
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


def at_least(obj: Any, minimum: float, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value < minimum:
            raise invalid(name, f"must be at least {minimum:g}", value)


def positive(obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not value > 0:
            raise invalid(name, "must be greater than 0", value)
