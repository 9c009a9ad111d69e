"""Real DistDGL servers and trainers on a tiny graph, started through the `rudder` CLI (the session's `none` run)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rudder_agent.records.stream import read_jsonl
from rudder_agent.records.trace import read_trace
from tests.integration.helpers import ROLES, assert_no_leftovers

pytestmark = pytest.mark.integration


def owners(part_config: Path, ids: np.ndarray) -> np.ndarray:
    """Owner partition of each id, from the partition book DGL itself loads."""
    from dgl.distributed import load_partition_book

    gpb = load_partition_book(str(part_config), 0)[0]
    return gpb.nid2partid(__import__("torch").from_numpy(ids)).numpy()


@pytest.fixture(scope="module")
def baseline_run(reference) -> Path:
    return reference("none")


def test_loss_falls(baseline_run: Path) -> None:
    epochs = read_jsonl(baseline_run / "metrics-rank0.jsonl", kind="epoch")
    assert len(epochs) == 3
    assert epochs[-1]["mean_loss"] < 0.8 * epochs[0]["mean_loss"]


def test_comm_rows_equal_remote_inputs_from_partition_book(baseline_run: Path) -> None:
    cfg = json.loads((baseline_run / "config.json").read_text())
    part_config = Path(cfg["part_config"])
    for rank in (0, 1):
        mbs = {m["step"]: m for m in read_jsonl(baseline_run / f"metrics-rank{rank}.jsonl", kind="minibatch")}
        frames = list(read_trace(baseline_run / f"trace-rank{rank}.rtf"))
        assert [s for s, _ in frames] == sorted(mbs)
        for step, ids in frames:
            remote = int(np.count_nonzero(owners(part_config, ids) != rank))
            assert remote > 0
            assert mbs[step]["input_nodes"] == len(ids)
            assert mbs[step]["comm_rows"] == remote == mbs[step]["remote_inputs"]


def test_summary_and_no_leftovers(baseline_run: Path) -> None:
    summary = json.loads((baseline_run / "summary.json").read_text())
    for key in ("dataset", "parts", "epochs", "minibatches", "remote_inputs", "comm_rows", "comm_bytes",
                "epoch_time_s", "val_acc", "test_acc"):
        assert key in summary
    assert summary["parts"] == 2 and summary["epochs"] == 3
    assert summary["test_acc"] > summary["majority_test_acc"]
    cluster = assert_no_leftovers(baseline_run)
    # a finished run ends by itself: servers exit once the trainers disconnect, nobody is signalled
    assert cluster["stopped_by_launcher"] == {}
    assert cluster["exit_codes"] == {role: 0 for role in ROLES}
