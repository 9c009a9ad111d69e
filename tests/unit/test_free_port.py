"""The cluster's listening ports are drawn outside the kernel's ephemeral range, so no bind(0) can take them first."""

from __future__ import annotations

import random
import socket

import pytest

from rudder_agent.cluster import launcher
from rudder_agent.cluster.launcher import free_port, listen_port_range
from rudder_agent.errors import RudderError


@pytest.mark.skipif(not launcher.EPHEMERAL_RANGE.exists(), reason="Linux only")
def test_ports_are_free_and_never_ephemeral():
    lo, hi = launcher.ephemeral_range()
    ports = [free_port(random.Random(seed)) for seed in range(50)]
    assert all(not lo <= p <= hi and 1024 <= p < 65536 for p in ports), (lo, hi, ports)
    for port in ports[:5]:  # free right now: a server can bind it
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))


@pytest.mark.parametrize("text, expected", [("32768\t60999\n", (12768, 32768)), ("1024 50000", (50001, 65536)),
                                            ("1024 65000", launcher.LISTEN_PORTS), ("garbage", launcher.LISTEN_PORTS)])
def test_the_range_lies_beside_the_ephemeral_one(tmp_path, monkeypatch, text, expected):
    path = tmp_path / "ip_local_port_range"
    path.write_text(text)
    monkeypatch.setattr(launcher, "EPHEMERAL_RANGE", path)
    assert listen_port_range() == expected
    monkeypatch.setattr(launcher, "EPHEMERAL_RANGE", tmp_path / "missing")
    assert listen_port_range() == launcher.LISTEN_PORTS


def test_a_port_that_is_taken_is_skipped_and_none_free_is_an_error(monkeypatch):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        monkeypatch.setattr(launcher, "listen_port_range", lambda: (port, port + 1))
        with pytest.raises(RudderError, match=f"no free TCP port in {port}-{port}"):
            free_port(random.Random(0))
