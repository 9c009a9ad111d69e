"""One buffer per machine, shared by its trainers (--buffer-scope machine), on a live DistDGL cluster: every
served row exact, one order per machine that replays, fewer rows than the same trainers with buffers of their own,
and a trainer that fails leaves no lock held and no segment behind."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from rudder_agent.cluster.fetch import CORRUPT_ENV
from rudder_agent.records.run_summary import read_summary
from rudder_agent.records.trace import read_trace
from rudder_agent.replay.machine_order import replay_machine
from rudder_agent.replay.machine_share import machine_share
from rudder_agent.replay.recording import load_recording
from tests.integration.helpers import alive, cluster_record, minibatches, rudder
from tests.integration.reference import REFERENCE

pytestmark = pytest.mark.integration

T = 2
MACHINES = {0: [0, 1], 1: [2, 3]}


@pytest.fixture(scope="module")
def run(reference) -> Path:
    return reference("fixed-lookahead-t2-shared")


def test_every_row_served_from_the_shared_buffer_is_exact(run) -> None:
    s = read_summary(run)
    assert s.verified_rows == s.input_nodes > 0
    assert s.hits > 0  # served from the machines' buffers, each row checked against the DistTensor


def test_sharing_changes_no_minibatch_and_no_loss(run, reference) -> None:
    """What a trainer samples and how it trains do not depend on where its features come from: every trainer has
    the same input nodes and the same loss per minibatch as DistDGL as shipped (`none`, the same seeds)."""
    none = reference("none-t2")
    for rank in range(2 * T):
        a, b = list(read_trace(none / f"trace-rank{rank}.rtf")), list(read_trace(run / f"trace-rank{rank}.rtf"))
        assert len(a) == len(b) == 10
        assert all(sa == sb and np.array_equal(ia, ib) for (sa, ia), (sb, ib) in zip(a, b))
        assert [m["loss"] for m in minibatches(none, rank)] == [m["loss"] for m in minibatches(run, rank)]


def test_each_machine_orders_its_trainers_minibatches_once(run) -> None:
    """Both trainers of a machine played their minibatches on one state: one sequence of places, no gaps."""
    for machine, ranks in MACHINES.items():
        ops = sorted(m["machine_op"] for r in ranks for m in minibatches(run, r))
        assert ops == list(range(ops[0], ops[0] + len(ops))), f"machine {machine}: {ops}"
        caps = {m["capacity"] for r in ranks for m in minibatches(run, r)}
        assert len(caps) == 1  # one buffer: the same capacity, T times a trainer's share of the halo
        (cap,) = caps
        assert cap == T * load_recording(run, ranks[0]).capacity()


def test_the_machines_fetch_fewer_rows_than_their_trainers_with_buffers_of_their_own(run) -> None:
    """The same recorded streams through one buffer of C rows per trainer (replayed) fetch more than the live
    shared buffers of T x C did. On cora's 20 minibatches a machine saves little (Belady itself: 0.88-0.93), so
    the machines are summed; tests/unit/test_buffer_shared.py holds each one to a margin on a designed stream."""
    live = separate = 0
    for machine, ranks in MACHINES.items():
        live += sum(m["comm_rows"] for r in ranks for m in minibatches(run, r))
        separate += machine_share([load_recording(run, r) for r in ranks], machine).separate["lookahead"]
    assert live < separate, (live, separate)


def test_the_live_order_replays_to_the_live_rows_and_belady_bounds_them(run) -> None:
    """Replayed in each machine's recorded order (machine_op), the machine's minibatches fetch what they fetched
    live, less the rows read again after a wait that lost its slot; Belady's MIN needs no more."""
    for machine in MACHINES:
        r = replay_machine(run, machine)
        assert r.live_rows == r.replayed_rows + r.refetched_rows, r
        assert r.belady_rows <= r.replayed_rows
    proc = rudder("replay", str(run), "--machine", "all")
    assert proc.returncode == 0 and proc.stdout.count("live == replayed + refetched: yes") == 2, proc.stdout


def test_a_failing_trainer_leaves_no_lock_held_and_no_segment_behind(tmp_path) -> None:
    """Trainer 0 corrupts its machine's buffered rows: a trainer of that machine serves one, its check fails, the
    run ends (exit 1) and the launcher stops the rest; no process and no shared-memory file of the run remains."""
    out = tmp_path / "corrupt"
    proc = rudder("train", *REFERENCE["fixed-lookahead-t2-shared"], "--out", str(out),
                  env={**os.environ, CORRUPT_ENV: "2"})
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "ServedRowMismatch" in proc.stderr
    cluster = cluster_record(out)
    assert [role for role, pid in cluster["pids"].items() if alive(pid)] == []
    assert sorted(Path("/dev/shm").glob(cluster["shm_prefix"] + "*")) == []
    caught = [r for r in range(2 * T) if "ServedRowMismatch" in (out / "logs" / f"trainer-{r}.log").read_text()]
    assert caught and set(caught) <= set(MACHINES[0]), caught  # machine 0's buffer was corrupted, nobody else's
    assert all(cluster["exit_codes"][f"trainer-{r}"] == 1 for r in caught), cluster["exit_codes"]
