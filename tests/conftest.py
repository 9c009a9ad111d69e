"""Shared fixtures: a private cache so tests never touch a user's partitions or features; the session's
reference runs; which tests share one worker when the suite runs on several (pytest-xdist)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest

from tests.integration.reference import ReferenceRuns

ONE_WORKER = "host"
"""The xdist group run by one worker, one test after another: tests that read the session's reference runs
(built once, on that worker) and tests marked host_wide (they make or count network namespaces, as the
fixed-decay reference does, or time a live model)."""


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if "reference" in item.fixturenames or item.get_closest_marker("host_wide"):
            item.add_marker(pytest.mark.xdist_group(ONE_WORKER))


@pytest.fixture(scope="session")
def reference(tmp_path_factory, isolated_cache) -> Callable[[str], Path]:
    """``reference(name)``: the directory of reference run ``name`` (tests/integration/reference.py), trained on
    first use and shared by every later test of the session."""
    return ReferenceRuns(tmp_path_factory.mktemp("reference"))


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Point RUDDER_CACHE (inherited by launched servers and trainers) at a session temp dir.

    Autouse: every test sees the same private cache whatever ran before it, so no test depends on
    whether an earlier one happened to request this fixture (or on what a user's cache holds).
    Tests that need an empty cache of their own monkeypatch RUDDER_CACHE themselves.
    """
    path = tmp_path_factory.mktemp("rudder-cache")
    old = os.environ.get("RUDDER_CACHE")
    os.environ["RUDDER_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("RUDDER_CACHE", None)
    else:
        os.environ["RUDDER_CACHE"] = old
