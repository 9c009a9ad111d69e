"""The persistent buffer inside real DistDGL training: exact rows, same training, fewer rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rudder_agent.traces import read_trace
from tests.integration.helpers import minibatches, train

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def runs(tmp_path_factory, isolated_cache) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("buffer-live")
    common = ["--epochs", "3", "--trace", "--verify"]
    return {
        "none": train(root / "none", *common, "--controller", "none"),
        "fixed": train(root / "fixed", *common, "--controller", "fixed", "--buffer-fraction", "0.25"),
    }


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


@pytest.mark.parametrize("controller", ["none", "fixed"])
def test_every_served_row_is_exact(runs, controller) -> None:
    s = summary(runs[controller])
    assert s["verified_rows"] == s["input_nodes"] > 0


def test_buffer_serves_hits_and_cuts_rows(runs) -> None:
    none, fixed = summary(runs["none"]), summary(runs["fixed"])
    assert none["hits"] == 0 and none["comm_rows"] == none["remote_inputs"]
    assert fixed["hits"] > 0
    assert fixed["comm_rows"] == fixed["miss_rows"] + fixed["replace_rows"]
    assert fixed["comm_rows"] < none["comm_rows"]
    for rank in (0, 1):
        for m in minibatches(runs["fixed"], rank):
            assert m["hits"] + m["misses"] == m["remote_inputs"]
            assert m["occupancy"] <= m["capacity"]


def test_same_minibatches_and_loss_with_and_without_buffer(runs) -> None:
    for rank in (0, 1):
        a = [(s, ids) for s, ids in read_trace(runs["none"] / f"trace-rank{rank}.rtf")]
        b = [(s, ids) for s, ids in read_trace(runs["fixed"] / f"trace-rank{rank}.rtf")]
        assert len(a) == len(b) > 0
        assert all(sa == sb and np.array_equal(ia, ib) for (sa, ia), (sb, ib) in zip(a, b))
        loss_a = [m["loss"] for m in minibatches(runs["none"], rank)]
        loss_b = [m["loss"] for m in minibatches(runs["fixed"], rank)]
        assert loss_a == loss_b
