"""`--verify` catches a wrong served row: BufferedFeatures over a small in-memory stand-in for a DistGraph.

The stand-in offers exactly what BufferedFeatures reads from a DistGraph (the feature tensor, the
local partition's ids and inner-node flags, the partition book, in-degrees, node and edge counts),
so the real buffer, engine, controller and checker run unchanged. A row is corrupted by poking the
buffer's own storage, so the wrong row reaches the model only as a buffer hit.
"""

from __future__ import annotations

from types import SimpleNamespace

import dgl
import numpy as np
import pytest
import torch

from rudder_agent.attach import BufferedFeatures, ServedRowMismatch
from rudder_agent.config import BufferConfig

NUM_NODES, DIM = 40, 4
LOCAL = range(0, 20)  # partition 0 owns ids 0..19, partition 1 owns 20..39
HALO = list(range(20, 30))  # remote ids present in partition 0's local graph
FEAT = torch.randn(NUM_NODES, DIM, generator=torch.Generator().manual_seed(7))
DEGREES = torch.tensor([(7 * i) % 13 for i in range(NUM_NODES)])  # distinct enough to order the halo


class PartitionBook:
    partid = 0

    def num_partitions(self) -> int:
        return 2

    def partid2nids(self, p: int) -> torch.Tensor:
        return torch.arange(0, 20) if p == 0 else torch.arange(20, 40)


class FakeDistGraph:
    """What BufferedFeatures reads from a DistGraph, and nothing else."""

    def __init__(self):
        self.ndata = {"feat": FEAT.clone()}
        ids = torch.tensor([*LOCAL, *HALO])
        inner = torch.tensor([1] * len(LOCAL) + [0] * len(HALO))
        self.local_partition = SimpleNamespace(ndata={dgl.NID: ids, "inner_node": inner})

    def get_partition_book(self) -> PartitionBook:
        return PartitionBook()

    def in_degrees(self, ids: torch.Tensor) -> torch.Tensor:
        return DEGREES[ids]

    def num_nodes(self) -> int:
        return NUM_NODES

    def num_edges(self) -> int:
        return 100


def features(controller: str, **cfg) -> BufferedFeatures:
    # fraction 0.5 of 10 halo nodes: capacity 5
    return BufferedFeatures(FakeDistGraph(), BufferConfig.from_values(dict(controller=controller, fraction=0.5, **cfg)),
                            total_minibatches=10, verify=True)


def fetch(f: BufferedFeatures, ids: list[int]):
    return f.fetch(torch.tensor(ids, dtype=torch.int64))


def corrupt(f: BufferedFeatures, node: int) -> None:
    """Change the buffered row of ``node`` in the buffer's storage (not in the DistTensor)."""
    slot = int(f.buffer.lookup(np.array([node]))[0])
    assert slot >= 0, f"{node} is not buffered"
    f.buffer._rows[slot] += 1.0


def test_fixed_buffer_serves_hits_and_every_row_is_checked():
    f = features("fixed")
    assert f.capacity == 5
    x, m = fetch(f, [0, 1, 20, 21, 22])  # all remote inputs miss; fixed inserts them
    assert (m.hits, m.misses) == (0, 3) and torch.equal(x, FEAT[[0, 1, 20, 21, 22]])
    assert sorted(f.buffer.slot_ids[f.buffer.slot_ids >= 0].tolist()) == [20, 21, 22]
    x, m = fetch(f, [2, 20, 21, 23])  # 20 and 21 come from the buffer
    assert (m.hits, m.misses, m.comm_rows) == (2, 1, 1)
    assert torch.equal(x, FEAT[[2, 20, 21, 23]])
    assert f.verified_rows == 5 + 4
    assert f.summary()["verified_rows"] == 9


@pytest.mark.parametrize("bad", [[20], [20, 23]])
def test_a_corrupted_buffered_row_is_caught_and_counted(bad):
    f = features("fixed")
    fetch(f, [0, 1, 20, 21, 22])
    fetch(f, [2, 20, 21, 23])  # 23 is inserted after this minibatch
    for node in bad:
        corrupt(f, node)
    with pytest.raises(ServedRowMismatch, match=rf"^{len(bad)} of 4 served feature rows differ"):
        fetch(f, [3, 20, 23, 24])  # hits: 20 and 23
    assert f.verified_rows == 9  # the failing minibatch is not counted


def test_a_corrupted_row_that_is_not_served_goes_unnoticed_until_it_is():
    f = features("fixed")
    fetch(f, [0, 1, 20, 21, 22])
    corrupt(f, 22)
    _, m = fetch(f, [2, 20, 21])  # 22 is buffered but not asked for
    assert m.hits == 2 and f.verified_rows == 8
    with pytest.raises(ServedRowMismatch, match=r"^1 of 2 served feature rows differ"):
        fetch(f, [4, 22])


def test_massivegnn_warm_rows_are_checked_from_the_first_minibatch():
    f = features("massivegnn", period=100)
    halo = np.array(HALO)
    top = halo[np.lexsort((halo, -DEGREES[halo].numpy()))][:5]  # degree desc, id asc
    assert f.warm_ids.tolist() == top.tolist() and len(f.warm_ids) == f.capacity == 5
    ids = [0, *top[:3].tolist(), *[h for h in HALO if h not in top][:2]]
    x, m = fetch(f, ids)  # step 0: no replacement yet, the hits are warm rows
    assert (m.hits, m.misses, m.decision_applied) == (3, 2, "skip")
    assert torch.equal(x, FEAT[ids]) and f.verified_rows == len(ids)
    corrupt(f, int(top[1]))
    with pytest.raises(ServedRowMismatch, match=rf"^1 of {len(ids)} served feature rows differ"):
        fetch(f, ids)


def test_without_a_buffer_every_row_is_still_checked():
    f = features("none")
    assert f.buffer is None and f.capacity == 0
    for ids in ([0, 20, 21], [5, 6, 39, 38]):
        x, m = fetch(f, ids)
        assert torch.equal(x, FEAT[ids]) and m.hits == 0
    assert f.verified_rows == 7


def test_a_wrong_row_from_the_pull_is_caught_too():
    """The checker reads the DistTensor itself: a pull that returned the wrong row is caught as well."""
    f = features("none")
    real = f.feat

    class SwappedRows:
        shape = real.shape
        dtype = real.dtype
        calls = 0

        def __getitem__(self, ids):
            SwappedRows.calls += 1
            rows = real[ids]
            return rows.flip(0) if SwappedRows.calls == 1 else rows  # only the served pull is wrong

    f.feat = SwappedRows()
    with pytest.raises(ServedRowMismatch, match=r"^2 of 3 served feature rows differ"):
        fetch(f, [0, 20, 21])  # reversed: 0 <-> 21 swapped, 20 in the middle stays
