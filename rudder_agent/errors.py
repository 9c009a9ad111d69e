"""The exception types users see: the CLI prints their message without a traceback."""

from __future__ import annotations


class RudderError(Exception):
    """A user-facing failure whose message says what went wrong and what to do about it."""

    exit_code: int = 1
    """What the command line exits with."""


class InputError(RudderError):
    """The user's input (a graph file, folder or partition) cannot be used: exit 2, like a bad option value."""

    exit_code = 2


def first_line(exc: BaseException) -> str:
    """An exception's message reduced to its first line, to quote inside a one-line error."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
