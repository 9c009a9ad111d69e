"""The one exception type users see: the CLI prints its message without a traceback."""

from __future__ import annotations


class RudderError(Exception):
    """A user-facing failure whose message says what went wrong and what to do about it."""
