"""Structured logging set-up shared by the CLI, servers and trainers."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str = "info", role: str | None = None, json: bool = False) -> None:
    """Route structlog to stderr, tagged with the process role (server-0, trainer-1, ...)."""
    processors: list = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False),
    ]
    processors.append(structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    if role:
        structlog.contextvars.bind_contextvars(role=role)


def _stderr_logger(*_args) -> structlog.PrintLogger:
    """Whatever sys.stderr is now (test runners and tools swap it), not the one seen at set-up."""
    return structlog.PrintLogger(file=sys.stderr)


def get_logger(name: str | None = None):
    """A bound structlog logger."""
    return structlog.get_logger(name)
