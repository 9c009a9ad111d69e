"""Pulls in chunks wait at the link gate while the training loop's backward pass and all-reduce hold it closed;
what is read does not change."""

from __future__ import annotations

import threading

import torch

from rudder_agent.link_gate import LinkGate
from tests.unit.test_verify import FakeDistGraph, features as verified_features


def test_an_open_gate_does_not_wait_and_a_closed_one_waits_until_it_opens() -> None:
    gate = LinkGate(max_wait_s=60)
    assert gate.wait() == 0.0
    inside, waited = threading.Event(), []
    with gate.closed():
        t = threading.Thread(target=lambda: (inside.set(), waited.append(gate.wait())))
        t.start()
        inside.wait()
        assert t.is_alive() and not waited  # held at the gate while the loop is inside
    t.join(timeout=60)
    assert len(waited) == 1 and waited[0] >= 0.0 and not t.is_alive()


def test_a_closed_gate_is_waited_for_at_most_max_wait_s() -> None:
    gate = LinkGate(max_wait_s=0.0)
    with gate.closed():
        assert gate.wait() >= 0.0  # returns although the gate stays closed


def test_chunked_pulls_read_the_same_rows_in_chunks_each_after_the_gate() -> None:
    f = verified_features("none")  # no buffer: every input row is read
    f.pull_chunk_bytes = 2 * f.row_bytes  # two rows a chunk
    reads, waits = [], []
    read, wait = f.read, f.gate.wait
    f.read = lambda tensor, ids: reads.append(len(ids)) or read(tensor, ids)
    f.gate.wait = lambda: waits.append(1) or wait()
    ids = [0, 1, 20, 21, 22]
    x, _ = f.fetch(torch.tensor(ids))  # verify=True: every row checked against the DistTensor
    assert torch.equal(x, FakeDistGraph().ndata["feat"][ids])
    assert reads[:3] == [2, 2, 1] and len(waits) == 3  # then the checker's own read
    f.read = read
    f.close()
