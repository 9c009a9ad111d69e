"""The documented way to attach Rudder to a user's own loop runs on a real local cluster."""

from __future__ import annotations

import ast
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
    # `rudder train --trainer` prints the tail of each trainer's log
    sections = re.split(r"^--- trainer-(\d)\.log$", proc.stdout, flags=re.M)[1:]
    logs = dict(zip(map(int, sections[::2]), sections[1::2]))
    assert sorted(logs) == [0, 1]
    for rank, text in logs.items():
        epochs = re.findall(rf"^rank {rank} epoch \d: .* of (\d+) remote inputs \((\d+) input nodes\), "
                            rf"%-Hits ([\d.]+)$", text, re.M)
        assert len(epochs) == 2
        assert max(float(hits) for *_, hits in epochs) > 0  # the buffer served rows
        [line] = [line for line in text.splitlines() if line.startswith("summary: ")]
        s = ast.literal_eval(line.removeprefix("summary: "))
        assert s["controller"] == "fixed" and s["warm_rows"] == 0
        # every input row was checked, local and remote, served from the buffer or fetched
        assert s["verified_rows"] == sum(int(inputs) for _, inputs, _ in epochs) > sum(int(r) for r, *_ in epochs)
        # one decision per minibatch, always replace (fixed runs inline: nothing is dropped)
        assert s["requests"] == s["decisions"]["replace"] and s["dropped"] == 0
