"""Shared fixtures: a private cache so tests never touch a user's partitions or features."""

from __future__ import annotations

import os

import pytest


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
