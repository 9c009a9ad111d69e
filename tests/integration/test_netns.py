"""The emulated cluster network: namespaces per machine, shaped links, nothing left behind."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from rudder_agent.cluster.netns import availability
from tests.integration.helpers import rudder, train, TINY

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(availability() is not None, reason=str(availability()))]


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_training_over_shaped_links_leaves_nothing(tmp_path: Path, isolated_cache) -> None:
    before = namespaces()
    run = train(tmp_path / "netns", "--epochs", "2", "--controller", "fixed", "--verify",
                "--network", "netns", "--link-rate", "200mbit")
    s = json.loads((run / "summary.json").read_text())
    assert s["network"] == "netns@200mbit"
    assert s["verified_rows"] == s["input_nodes"] > 0
    assert all(line.startswith("10.77.") for line in (run / "ip_config.txt").read_text().splitlines())
    assert namespaces() == before


def test_failure_inside_namespaces_leaves_nothing(tmp_path: Path, isolated_cache) -> None:
    before = namespaces()
    proc = rudder("train", *TINY, "--epochs", "2", "--network", "netns", "--out", str(tmp_path / "fail"),
                  "--fail-at-step", "1")
    assert proc.returncode != 0 and "trainer-0 failed" in proc.stderr
    assert namespaces() == before
