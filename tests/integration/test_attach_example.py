"""The documented way to attach Rudder to a user's own loop runs on a real local cluster."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rudder_agent.paths import PROJECT_ROOT
from tests.integration.helpers import rudder, TINY

pytestmark = pytest.mark.integration


def test_attach_example_runs_with_exact_rows(tmp_path: Path, isolated_cache) -> None:
    out = tmp_path / "attach"
    proc = rudder("train", *TINY, "--epochs", "2", "--controller", "fixed", "--verify", "--out", str(out),
                  "--trainer", str(PROJECT_ROOT / "examples" / "attach_to_distdgl_loop.py"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    verified = [int(v) for v in re.findall(r"'verified_rows': (\d+)", proc.stdout)]
    assert len(verified) == 2 and all(v > 0 for v in verified)
    hits = [float(v) for v in re.findall(r"%-Hits ([\d.]+)", proc.stdout)]
    assert max(hits) > 0
