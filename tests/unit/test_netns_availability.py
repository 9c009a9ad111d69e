"""The emulated network says why it cannot run (no root, no iproute2) instead of failing later."""

from __future__ import annotations

import pytest

from rudder_agent.cluster import netns
from rudder_agent.errors import RudderError


def test_without_root_the_reason_names_root_and_the_loopback_alternative(monkeypatch):
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    reason = netns.availability()
    assert reason is not None and "needs root" in reason and "--network loopback" in reason
    with pytest.raises(RudderError, match="needs root"):
        netns.EmulatedNetwork(machines=2).setup()


def test_without_iproute2_the_reason_names_the_missing_tools(monkeypatch):
    monkeypatch.setattr(netns.os, "geteuid", lambda: 0)
    monkeypatch.setattr(netns.shutil, "which", lambda tool: None if tool == "tc" else f"/sbin/{tool}")
    assert netns.availability() == "the emulated network needs iproute2 (tc not found)"
