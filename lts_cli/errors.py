"""The one error type of lts: a message a user can act on, printed without a traceback."""

from __future__ import annotations


class LtsError(Exception):
    """Something went wrong that the user can fix; the message says what and how."""

    exit_code = 1


class UsageError(LtsError):
    """The command line itself was wrong (exit code 2, as Typer uses for usage errors)."""

    exit_code = 2
