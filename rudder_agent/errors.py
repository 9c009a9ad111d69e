"""The exception types users see: the CLI prints their message on one line, without a traceback."""

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


class SettingError(RudderError):
    """A setting whose value cannot work, found before anything starts; the CLI exits 2 naming its option.

    Code below the command line knows settings by their field name (``timeout_s``); the command
    line names the option that sets it (``--llm-timeout``) with :meth:`for_option`.
    """

    exit_code = 2

    def __init__(self, field: str, message: str, option: str | None = None):
        self.field, self.message, self.option = field, message, option
        super().__init__(f"{option or field}: {message}")

    def for_option(self, option: str) -> SettingError:
        """The same error, named by the option that sets the field."""
        return SettingError(self.field, self.message, option)
