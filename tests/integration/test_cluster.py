"""Real DistDGL servers and trainers on a tiny graph, started through the `rudder` CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rudder_agent.metrics import read_jsonl
from rudder_agent.traces import read_trace
from tests.integration.helpers import (ROLES, STOPPED, TINY, alive, assert_no_leftovers, finish, rudder,
                                       wait_for_file)

pytestmark = pytest.mark.integration


def owners(part_config: Path, ids: np.ndarray) -> np.ndarray:
    """Owner partition of each id, from the partition book DGL itself loads."""
    from dgl.distributed import load_partition_book

    gpb = load_partition_book(str(part_config), 0)[0]
    return gpb.nid2partid(__import__("torch").from_numpy(ids)).numpy()


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory, isolated_cache) -> Path:
    out = tmp_path_factory.mktemp("run") / "baseline"
    proc = rudder("train", *TINY, "--epochs", "4", "--out", str(out), "--trace")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_loss_falls(baseline_run: Path) -> None:
    epochs = read_jsonl(baseline_run / "metrics-rank0.jsonl", kind="epoch")
    assert len(epochs) == 4
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
    assert summary["parts"] == 2 and summary["epochs"] == 4
    assert summary["test_acc"] > summary["majority_test_acc"]
    cluster = assert_no_leftovers(baseline_run)
    # a finished run ends by itself: servers exit once the trainers disconnect, nobody is signalled
    assert cluster["stopped_by_launcher"] == {}
    assert cluster["exit_codes"] == {role: 0 for role in ROLES}


def test_failing_trainer_stops_everything(tmp_path: Path, isolated_cache) -> None:
    out = tmp_path / "fail"
    proc = rudder("train", *TINY, "--epochs", "3", "--out", str(out), "--fail-at-step", "1", timeout=240)
    assert proc.returncode == 1
    assert "trainer-0 failed (exit code 1)" in proc.stderr
    assert "InjectedFailure" in proc.stderr
    cluster = assert_no_leftovers(out)
    assert cluster["exit_codes"]["trainer-0"] == 1
    # the servers never end by themselves while a trainer is missing: the launcher stopped them
    for server in ("server-0", "server-1"):
        assert server in cluster["stopped_by_launcher"], cluster
        assert cluster["exit_codes"][server] in STOPPED, cluster


def test_ctrl_c_stops_everything(tmp_path: Path, isolated_cache) -> None:
    out = tmp_path / "interrupted"
    proc = subprocess.Popen([sys.executable, "-m", "rudder_agent.cli", "train", *TINY, "--epochs", "50",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_file(out / "metrics-rank0.jsonl", proc)
    proc.send_signal(signal.SIGINT)
    _, err = finish(proc)
    assert proc.returncode == 130
    assert "interrupted" in err
    cluster = assert_no_leftovers(out)
    assert set(cluster["stopped_by_launcher"]) == ROLES  # all four were running and the launcher ended them
    assert set(cluster["exit_codes"].values()) <= STOPPED


def test_killed_launcher_takes_its_processes_along(tmp_path: Path, isolated_cache) -> None:
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "rudder_agent.cli", "train", *TINY, "--epochs", "50",
                             "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_file(out / "metrics-rank0.jsonl", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cluster = json.loads((out / "cluster.json").read_text())
    assert "exit_codes" not in cluster  # the launcher never got to stop anything itself
    pids = cluster["pids"].values()
    deadline = time.monotonic() + 30  # hang guard: the kernel's parent-death signal does the work
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in pids)
    from rudder_agent.cluster.isolation import remove_stale_segments

    remove_stale_segments()  # what the next launch does first
    assert sorted(Path("/dev/shm").glob(cluster["shm_prefix"] + "*")) == []
