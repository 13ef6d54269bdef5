"""The one error type of lts: a message a user can act on, printed without a traceback."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class LtsError(Exception):
    """Something went wrong that the user can fix; the message says what and how."""

    exit_code = 1


class UsageError(LtsError):
    """The command line itself was wrong (exit code 2, as Typer uses for usage errors)."""

    exit_code = 2


class NotFound(LtsError):
    """A reference (id, prefix, name) matched nothing; callers may go on to try other kinds of reference."""


class NotGpt2(LtsError):
    """A model that is not a GPT-2 decoder, where lts needs one (search, profile, export, ONNX)."""


class TooFewMeasurements(LtsError):
    """A latency model was asked for with fewer measurements than it needs; the message says how many."""


class ConfigError(LtsError):
    """A config value is invalid. `fields` are the dotted keys at fault, so the message can name them
    the way the user gave them: `--seq-len` for a flag, `measure.seq_len` in a file. The library never
    names a flag; the command line maps fields to flags."""

    exit_code = 2

    def __init__(self, fields: Sequence[str], template: str) -> None:
        self.fields = tuple(fields)
        self.template = template  # one `{0}`, `{1}`, ... per field, everything else escaped
        super().__init__(template.format(*self.fields))

    def named(self, names: Sequence[str]) -> str:
        return self.template.format(*names)

    def nested(self, prefix: str) -> ConfigError:
        return ConfigError([f"{prefix}.{f}" for f in self.fields], self.template)


def invalid(field: str, requirement: str, value: Any = None) -> ConfigError:
    """`{field} {requirement}, got {value}`: the usual one-field complaint."""
    got = "" if value is None else f", got {value!r}"
    return ConfigError([field], "{0} " + _escape(requirement + got))


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none), for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
