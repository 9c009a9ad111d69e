"""A pipelined fetch (plans ahead of fills, rows from peers) serves and decides exactly what a serial fetch does.

BufferedFeatures runs over the in-memory DistGraph stand-in of test_verify.py, its remote rows read from a real
RowServer over a socket. Every minibatch is planned before the first one is filled (the furthest a pipeline can
run ahead), so a fill that read a row before the fill that wrote it, or a plan that missed an earlier
replacement, shows up as a wrong feature row or a different count.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rudder_agent.attach import ServedRowMismatch, lookahead
from rudder_agent.peer_rows import PeerRows, RowServer
from tests.unit.test_verify import FEAT, features

STREAM = [np.random.default_rng(s).choice(40, size=9, replace=False) for s in range(24)]


def minibatches():
    """What a DistDataLoader yields: (input_nodes, seeds, blocks)."""
    return [(torch.from_numpy(ids), torch.from_numpy(ids[:2]), []) for ids in STREAM]


@pytest.fixture
def peer():
    server = RowServer(FEAT[20:].clone(), 20)  # partition 1's rows
    yield server
    server.close()


def with_peers(f, server: RowServer):
    f.peers = PeerRows(FEAT[:20].clone(), f.bounds, 0, [("127.0.0.1", 1), ("127.0.0.1", server.port)])
    return f


def serial(controller: str, **cfg):
    f = features(controller, **cfg)
    out = []
    for _, (input_nodes, _, _), ahead in lookahead([(0, minibatches())], f.window):
        x, m = f.fetch(input_nodes, 0, [a[0] for a in ahead])
        out.append((x, m))
    return f, out


@pytest.mark.parametrize("controller,cfg", [("fixed", {}), ("fixed", {"policy": "lfu"}), ("none", {})])
def test_planned_all_ahead_then_filled_in_order_equals_the_serial_fetch(peer, controller, cfg):
    ref, expected = serial(controller, **cfg)
    f = with_peers(features(controller, **cfg), peer)
    assert f.pipelined
    it = lookahead([(0, minibatches())], f.window)
    planned = []
    while (mb := f.plan_next(it)) is not None:
        planned.append(mb)
    served = [f.fill(mb) for mb in planned]
    assert len(served) == len(STREAM)
    for ids, x, mb, (x_ref, m_ref) in zip(STREAM, served, planned, expected):
        assert torch.equal(x, FEAT[ids]) and torch.equal(x, x_ref)
        got, want = mb.metrics.model_dump(), m_ref.model_dump()
        assert {k: v for k, v in got.items() if not k.startswith(("t_", "ts_"))} == \
            {k: v for k, v in want.items() if not k.startswith(("t_", "ts_"))}
    if ref.buffer is not None:
        assert np.array_equal(f.buffer.slot_ids, ref.buffer.slot_ids)
        assert torch.equal(f.buffer._rows, ref.buffer._rows)
        assert sum(mb.metrics.hits for mb in planned) > 20  # hits were served from the buffer
    assert f.verified_rows == sum(len(ids) for ids in STREAM)
    assert peer.served_rows > 0


def test_a_corrupted_buffered_row_is_caught_by_the_pipelined_fetch_too(peer):
    f = with_peers(features("fixed"), peer)
    it = lookahead([(0, minibatches())], f.window)
    planned = [f.plan_next(it) for _ in range(6)]
    for mb in planned[:3]:
        f.fill(mb)
    f.buffer._rows[f.buffer.slot_ids >= 0] += 1.0
    with pytest.raises(ServedRowMismatch, match="served feature rows differ"):
        for mb in planned[3:]:
            f.fill(mb)
