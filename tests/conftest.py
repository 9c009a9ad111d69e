"""Shared fixtures: a private cache so tests never touch a user's partitions or features."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def isolated_cache(tmp_path_factory):
    """Point RUDDER_CACHE (inherited by launched servers and trainers) at a session temp dir."""
    path = tmp_path_factory.mktemp("rudder-cache")
    old = os.environ.get("RUDDER_CACHE")
    os.environ["RUDDER_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("RUDDER_CACHE", None)
    else:
        os.environ["RUDDER_CACHE"] = old
