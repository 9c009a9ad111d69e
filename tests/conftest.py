"""Shared fixtures: a private cache so tests never touch a user's partitions or features; the session's
reference runs; which tests share one worker when the suite runs on several (pytest-xdist)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest

from tests.integration.reference import ReferenceRuns

HOST_GROUP = frozenset(f"tests/integration/{name}.py" for name in (
    "test_buffer_live", "test_classifier_live", "test_cluster", "test_launcher_failures", "test_llm_async_live",
    "test_llm_live", "test_lookahead_live", "test_netns", "test_open_loop_live", "test_replay_fidelity",
    "test_trainers_per_machine", "test_ssh_hosts", "test_machine_buffer"))
"""Test files one worker runs, one test after another, when the suite runs on several (pytest-xdist, `make test`):
those that read the session's reference runs (built once, by that worker) and those with tests marked
host_wide (they make or count network namespaces, as the fixed-decay reference run does, or time a live model).
Every other file is a unit of its own, so its module fixtures are built once too."""


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items) -> None:
    """A test that needs the host group outside HOST_GROUP would rebuild the reference runs on another worker, or
    race a namespace count: refused at collection, naming the file to add."""
    strays = sorted({item.nodeid.split("::", 1)[0] for item in items
                     if ("reference" in item.fixturenames or item.get_closest_marker("host_wide"))}
                    - HOST_GROUP)
    if strays:
        raise pytest.UsageError(f"add {', '.join(strays)} to HOST_GROUP in tests/conftest.py: its tests read the "
                                "reference runs or are marked host_wide")


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook
def pytest_xdist_make_scheduler(config, log):
    """With ``--dist loadgroup``: the files of HOST_GROUP are one unit of work, every other file one of its own.

    (pytest-xdist's own loadgroup reads ``xdist_group`` marks by rewriting node ids, which pytest 9 no longer
    allows: its groups silently do nothing.)"""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class HostGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "host group" if path in HOST_GROUP else path

    return HostGroupScheduling(config, log)


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
