"""Several trainers per machine (DistDGL's num_trainers): each machine's trainers share its server and partition,
split the seeds, keep buffers of their own, and train exactly as DistDGL does; on the emulated network each
machine finds its own id from its address, with its own /dev/shm, and on loopback the shim pins it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from rudder_agent.cluster.netns import availability
from rudder_agent.records.run_summary import read_summary
from rudder_agent.records.stream import read_jsonl
from rudder_agent.records.trace import read_trace, read_trace_meta
from tests.integration.helpers import minibatches

pytestmark = pytest.mark.integration

RANKS = range(4)
T = 2


@pytest.fixture(scope="module")
def runs(reference) -> dict[str, Path]:
    return {"none": reference("none-t2"), "fixed": reference("fixed-decay-t2")}


def ready(run: Path, rank: int) -> dict[str, str]:
    """The fields of trainer ``rank``'s "trainer ready" log line."""
    line = next(line for line in (run / "logs" / f"trainer-{rank}.log").read_text().splitlines()
                if "trainer ready" in line)
    return dict(re.findall(r"(\w+)=(\S+)", line))


@pytest.mark.parametrize("name", ["none", "fixed"])
def test_each_machines_trainers_serve_its_partition_with_buffers_and_streams_of_their_own(runs, name) -> None:
    run = runs[name]
    for rank in RANKS:
        assert read_trace_meta(run / f"trace-rank{rank}.json").partition == rank // T
        assert len(minibatches(run, rank)) == 10  # 35 seeds each, batch 8, 2 epochs: the seeds are split over all 4
    seeds = [ready(run, rank)["train_nodes"] for rank in RANKS]
    assert seeds == ["35"] * 4
    s = read_summary(run)
    assert s.trainers_per_machine == T and s.parts == 2
    assert [m.ranks for m in s.machines] == [[0, 1], [2, 3]]
    assert sum(m.comm_rows for m in s.machines) == s.comm_rows
    assert [m.comm_rows for m in s.machines] == [
        sum(mb["comm_rows"] for r in (k * T, k * T + 1) for mb in minibatches(run, r)) for k in (0, 1)]
    if name == "fixed":  # each trainer's buffer is sized from its machine's halo
        assert s.capacity[0] == s.capacity[1] > 0 and s.capacity[2] == s.capacity[3] > 0


@pytest.mark.parametrize("name", ["none", "fixed"])
def test_every_served_row_is_exact_with_two_trainers_per_machine(runs, name) -> None:
    run = runs[name]
    s = read_summary(run)
    assert s.verified_rows == s.input_nodes > 0
    for rank in RANKS:
        (c,) = read_jsonl(run / f"metrics-rank{rank}.jsonl", kind="controller")
        assert c["verified_rows"] == sum(m["input_nodes"] for m in minibatches(run, rank))


def test_the_buffer_trains_exactly_as_distdgl_with_two_trainers_per_machine(runs) -> None:
    """The decay policy has no window: every trainer samples the same minibatches as `none`, with the same loss,
    and fetches fewer rows."""
    for rank in RANKS:
        a = list(read_trace(runs["none"] / f"trace-rank{rank}.rtf"))
        b = list(read_trace(runs["fixed"] / f"trace-rank{rank}.rtf"))
        assert len(a) == len(b) == 10
        assert all(sa == sb and np.array_equal(ia, ib) for (sa, ia), (sb, ib) in zip(a, b))
        assert [m["loss"] for m in minibatches(runs["none"], rank)] == [m["loss"] for m in minibatches(runs["fixed"], rank)]
    none, fixed = read_summary(runs["none"]), read_summary(runs["fixed"])
    assert fixed.comm_rows < none.comm_rows == none.remote_inputs
    assert all(f.comm_rows < n.comm_rows for f, n in zip(fixed.machines, none.machines))


@pytest.mark.skipif(availability() is not None, reason=str(availability()))
def test_machine_ids_come_from_addresses_on_the_emulated_network_and_from_the_shim_on_loopback(runs) -> None:
    """On the emulated network no machine id is pinned: DGL matched each machine's own address (the partition
    checks above hold), and each machine's trainers share a /dev/shm of their own, which is neither the other
    machine's nor this host's. On loopback the shim pins the ids and every machine uses the host's /dev/shm."""
    host_shm = str(os.stat("/dev/shm").st_dev)
    emulated = [ready(runs["fixed"], rank) for rank in RANKS]
    assert [r["machine_id_from"] for r in emulated] == ["address"] * 4
    assert [r["partition"] for r in emulated] == ["0", "0", "1", "1"]
    shm = [r["shm_device"] for r in emulated]
    assert shm[0] == shm[1] != shm[2] == shm[3] and host_shm not in shm
    loopback = [ready(runs["none"], rank) for rank in RANKS]
    assert [r["machine_id_from"] for r in loopback] == ["shim"] * 4
    assert [r["shm_device"] for r in loopback] == [host_shm] * 4
