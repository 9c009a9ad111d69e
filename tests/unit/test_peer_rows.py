"""Rows read from their machine's peer over real sockets: exact, in order, pipelined, and never another id's."""

from __future__ import annotations

import socket
import struct

import numpy as np
import pytest
import torch

from rudder_agent.peer_rows import PeerRows, PeerRowsError, RowServer, machine_address

FEAT = torch.randn(1000, 8, generator=torch.Generator().manual_seed(3))
BOUNDS = np.array([300, 700, 1000])  # partition 0: 0..299, 1: 300..699, 2: 700..999


@pytest.fixture
def servers():
    made = [RowServer(FEAT[lo:hi].clone(), lo) for lo, hi in ((0, 300), (300, 700), (700, 1000))]
    yield made
    for s in made:
        s.close()


def reader(servers, partition: int = 1, bounds=BOUNDS) -> PeerRows:
    lo = int(bounds[partition - 1]) if partition else 0
    return PeerRows(FEAT[lo:int(bounds[partition])].clone(), bounds, partition,
                    [("127.0.0.1", s.port) for s in servers])


def test_rows_of_every_partition_come_exactly_in_the_order_asked(servers):
    rows = reader(servers)
    rng = np.random.default_rng(0)
    for n in (0, 1, 7, 5000):
        ids = rng.integers(0, 1000, n)  # repeats, every partition, this machine's own too
        assert torch.equal(rows(ids), FEAT[ids])
    assert servers[1].served_rows == 0  # this machine's rows are read locally
    assert servers[0].served_rows > 0 and servers[2].served_rows > 0
    rows.close()


def test_requests_made_ahead_are_collected_in_order(servers):
    """The pipelined fetch asks for minibatch i+1's rows before it takes minibatch i's."""
    rows = reader(servers, partition=0)
    rng = np.random.default_rng(1)
    batches = [rng.integers(0, 1000, 3000) for _ in range(5)]
    asked = [rows.request(ids) for ids in batches]
    for ids, req in zip(batches, asked):
        assert torch.equal(rows.collect(req), FEAT[ids])
    rows.close()


def test_a_server_answers_no_row_for_an_id_it_does_not_own(servers):
    with socket.create_connection(("127.0.0.1", servers[1].port)) as sock:
        ids = np.array([300, 699, 700], dtype=np.int64)  # 700 is partition 2's
        sock.sendall(struct.pack("<q", 3) + ids.tobytes())
        assert struct.unpack("<q", sock.recv(8))[0] == -1
        ids = np.array([699, 300], dtype=np.int64)  # the connection goes on
        sock.sendall(struct.pack("<q", 2) + ids.tobytes())
        assert struct.unpack("<q", sock.recv(8))[0] == 2


def test_a_reader_with_other_bounds_than_its_peers_fails_instead_of_serving_wrong_rows(servers):
    rows = reader(servers, partition=0, bounds=np.array([300, 750, 1000]))  # thinks 700..749 are partition 1's
    assert torch.equal(rows(np.array([5, 310])), FEAT[[5, 310]])
    with pytest.raises(PeerRowsError, match="partition 1's row server answered -1 rows for 1 ids"):
        rows(np.array([5, 720]))


def test_ids_beyond_the_last_partition_and_unreachable_peers_are_named(servers):
    rows = reader(servers)
    with pytest.raises(PeerRowsError, match="id 1000 is beyond"):
        rows(np.array([5, 1000]))
    port = servers[2].port
    servers[2].close()
    gone = PeerRows(FEAT[300:700].clone(), BOUNDS, 1, [("127.0.0.1", servers[0].port), ("127.0.0.1", 1),
                                                       ("127.0.0.1", port)])
    with pytest.raises(PeerRowsError, match=f"partition 2's row server at 127.0.0.1:{port}"):
        gone(np.array([800]))


def test_the_local_rows_must_cover_the_partition():
    with pytest.raises(ValueError, match="holds 10 rows, its id range 400"):
        PeerRows(FEAT[:10], BOUNDS, 1, [("h", 1)] * 3)


def test_the_machine_address_is_its_line_of_the_ip_config(tmp_path):
    ip_config = tmp_path / "ip_config.txt"
    ip_config.write_text("10.0.0.2 30050\n\n10.0.0.3 30051\n")
    assert machine_address(1, str(ip_config)) == "10.0.0.3"
    assert machine_address(2, str(ip_config)) is None
    assert machine_address(0, str(tmp_path / "missing")) is None


def test_rows_of_one_value_each_labels_come_exactly_too():
    labels = torch.randint(0, 40, (1000,), generator=torch.Generator().manual_seed(5))
    servers = [RowServer(labels[lo:hi].clone(), lo) for lo, hi in ((0, 300), (300, 700), (700, 1000))]
    try:
        rows = PeerRows(labels[300:700].clone(), BOUNDS, 1, [("127.0.0.1", s.port) for s in servers])
        ids = np.random.default_rng(2).integers(0, 1000, 800)
        got = rows(ids)
        assert got.shape == (800,) and torch.equal(got, labels[ids])
    finally:
        for s in servers:
            s.close()
