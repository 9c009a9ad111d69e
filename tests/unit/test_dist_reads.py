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
