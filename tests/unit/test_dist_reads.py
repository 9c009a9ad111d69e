"""Reads run on the reader thread, never on the caller's (DGL's RNG is thread-local)."""

from __future__ import annotations

import threading

import numpy as np
import torch

from rudder_agent.dist_reads import DistReader


class RecordingTensor:
    """Stands in for a DistTensor: remembers which thread read it."""

    def __init__(self, rows: torch.Tensor):
        self.rows, self.threads = rows, []

    def __getitem__(self, ids):
        self.threads.append(threading.get_ident())
        return self.rows[ids]


def test_rows_are_read_on_one_other_thread_and_returned_in_order() -> None:
    t = RecordingTensor(torch.arange(20.0).reshape(10, 2))
    read = DistReader()
    try:
        assert torch.equal(read(t, np.array([3, 1, 3])), t.rows[[3, 1, 3]])
        assert torch.equal(read(t, torch.tensor([0, 9])), t.rows[[0, 9]])
    finally:
        read.close()
    assert len(set(t.threads)) == 1 and t.threads[0] != threading.get_ident()


class Policy:
    """A DistTensor's partition policy: this machine owns ids 10..19."""

    part_id = 1

    def to_partid(self, ids: torch.Tensor) -> torch.Tensor:
        return (ids >= 10).long()

    def to_local(self, ids: torch.Tensor) -> torch.Tensor:
        return ids - 10


class LocalPartTensor(RecordingTensor):
    """A DistTensor with its local part in this machine's data store, as DGL's trainers see it."""

    _name = "node:labels"
    _part_policy = Policy()

    def __init__(self, rows: torch.Tensor):
        super().__init__(rows)
        self.kvstore = type("KV", (), {"data_store": {self._name: rows[10:].clone()}})()


def test_rows_all_of_this_machine_come_from_its_shared_memory_without_a_read() -> None:
    t = LocalPartTensor(torch.arange(40.0).reshape(20, 2))
    read = DistReader()
    try:
        got = read(t, np.array([12, 19, 12]))
        assert torch.equal(got, t.rows[[12, 19, 12]]) and t.threads == []  # no DistTensor read
        got[0] = -1  # the caller's own tensor, not the store's
        assert torch.equal(t.kvstore.data_store[t._name][2], t.rows[12])
        assert torch.equal(read(t, np.array([12, 3])), t.rows[[12, 3]]) and len(t.threads) == 1  # one is remote
    finally:
        read.close()
