"""Feature rows read from the machine that owns them over a socket of their own, beside DGL's RPC.

DGL 2.1's RPC client serves one request at a time: its sampling RPCs and its feature pulls match responses
on one queue, so a trainer's sampling and pulls take turns. On a slow link the link then idles while the
trainer samples (measured at 80 Mbit/s: the sampling thread busy 95% of the epoch, 4.2 s sampling and
12.6 s pulling in turn; docs/benchmarks.md). Here every trainer serves its own machine's rows, the partition's
shared-memory tensor its DistDGL server filled, on a TCP socket, and reads other machines' rows from theirs:
a pull is in flight while the sampling thread samples the next minibatch.

The protocol, per request on one connection: the client sends the row count n (int64) and n global ids
(int64, all of the server's partition); the server answers n (int64) and the n rows, or -1 and nothing for
ids it does not own. Rows are the partition's own bytes: what a DistTensor read returns.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rudder_agent.buffer.engine import partition_start
from rudder_agent.buffer.persistent import copy_rows
from rudder_agent.dist_reads import local_part
from rudder_agent.errors import RudderError
from rudder_agent.log import get_logger

log = get_logger(__name__)

_COUNT = struct.Struct("<q")


class PeerRowsError(RudderError):
    """A peer refused or dropped a row request."""


def _recv_exact(sock: socket.socket, view: memoryview) -> None:
    while view.nbytes:
        got = sock.recv_into(view, view.nbytes, socket.MSG_WAITALL)  # one wait, without the GIL, as a rule
        if not got:
            raise PeerRowsError("a peer closed its row connection mid-answer")
        view = view[got:]


def _recv_count(sock: socket.socket) -> int | None:
    """The next row count on ``sock``; None where the peer closed the connection between two messages."""
    head = bytearray(_COUNT.size)
    if not (got := sock.recv_into(head)):
        return None
    _recv_exact(sock, memoryview(head)[got:])
    return _COUNT.unpack(head)[0]


def _bytes_of(t: torch.Tensor) -> memoryview:
    return memoryview(t.numpy()).cast("B")


@dataclass(frozen=True, slots=True)
class Request:
    """Rows asked for (:meth:`PeerRows.request`), to collect."""

    ids: np.ndarray
    mine: np.ndarray  # positions of this machine's own ids
    asked: list  # (partition, positions) per peer asked, in the order asked


class RowServer:
    """Serves rows ``lo .. lo + len(rows) - 1`` of a feature tensor to peers, one thread per connection.

    Args:
        rows: the partition's rows (the local part of the DistTensor), row i being global id ``lo + i``.
        lo: the global id of row 0.
        host: the address to listen on.
    """

    def __init__(self, rows: torch.Tensor, lo: int, host: str = "0.0.0.0"):
        self.rows, self.lo, self.hi = rows, lo, lo + rows.shape[0]
        self._sock = socket.create_server((host, 0))
        self.port = self._sock.getsockname()[1]
        self._closed = threading.Event()
        self._conns: list[socket.socket] = []
        self.served_rows = 0
        threading.Thread(target=self._accept, name="rudder-rows-accept", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), name="rudder-rows-serve", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            while (n := _recv_count(conn)) is not None:
                ids = np.empty(n, dtype=np.int64)
                _recv_exact(conn, memoryview(ids).cast("B"))
                if n and (ids.min() < self.lo or ids.max() >= self.hi):
                    conn.sendall(_COUNT.pack(-1))  # never a row of another id
                    continue
                out = self.rows.index_select(0, torch.from_numpy(ids - self.lo))
                conn.sendall(_COUNT.pack(n))
                conn.sendall(_bytes_of(out))
                self.served_rows += n
        except (OSError, PeerRowsError):
            pass  # the peer went away; its reads fail on its side
        finally:
            conn.close()

    def close(self) -> None:
        self._closed.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread: a closed fd alone would not
        except OSError:
            pass
        self._sock.close()
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class PeerRows:
    """``rows(ids)``: feature rows of global ids, read locally for this machine's partition and from the owning
    machine's :class:`RowServer` for the others, all machines at once.

    Args:
        local: this machine's partition rows (row i = global id ``bounds[partition - 1] + i``).
        bounds: cumulative upper id bound of each partition (ids are contiguous per partition).
        partition: this machine's partition.
        peers: ``(host, port)`` of a row server of each partition (this machine's own is not used).
    """

    def __init__(self, local: torch.Tensor, bounds: np.ndarray, partition: int, peers: list[tuple[str, int]]):
        if len(peers) != len(bounds):
            raise ValueError(f"{len(peers)} peers for {len(bounds)} partitions")
        self.local, self.bounds, self.partition = local, np.asarray(bounds, dtype=np.int64), partition
        self.lo = partition_start(self.bounds, partition)
        if local.shape[0] != int(self.bounds[partition]) - self.lo:
            raise ValueError(f"the local partition holds {local.shape[0]} rows, its id range "
                             f"{int(self.bounds[partition]) - self.lo}")
        self.peers = peers
        self._local_2d = local.reshape(local.shape[0], -1)
        self._socks: dict[int, socket.socket] = {}

    def _sock(self, part: int) -> socket.socket:
        if part not in self._socks:
            host, port = self.peers[part]
            try:
                sock = socket.create_connection((host, port), timeout=60)
            except OSError as exc:
                raise PeerRowsError(f"cannot reach partition {part}'s row server at {host}:{port}: {exc}") from None
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._socks[part] = sock
        return self._socks[part]

    def __call__(self, ids: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The rows of ``ids``, in that order."""
        return self.collect(self.request(ids))

    def request(self, ids: np.ndarray | torch.Tensor) -> Request:
        """Ask the owning peers for the rows of ``ids`` now; :meth:`collect` takes them.

        Requests go out from one thread and are collected from one thread, in the order they were made (each
        peer answers a connection's requests in order): a pipelined fetch asks for minibatch i+1's rows while
        minibatch i's arrive, so the link carries one answer after the other, without a round trip between.
        """
        ids = ids.numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids, dtype=np.int64)
        part = np.searchsorted(self.bounds, ids, side="right")
        if (beyond := part >= len(self.bounds)).any():
            raise PeerRowsError(f"id {int(ids[beyond][0])} is beyond the graph's last partition")
        asked = []
        for p in np.unique(part).tolist():
            if p == self.partition:
                continue
            pos = np.flatnonzero(part == p)
            want = np.ascontiguousarray(ids[pos])
            self._sock(p).sendall(_COUNT.pack(len(want)) + want.tobytes())
            asked.append((p, pos))
        return Request(ids, np.flatnonzero(part == self.partition), asked)

    def collect(self, req: Request) -> torch.Tensor:
        """The rows of a :meth:`request`, in the order of its ids: this machine's read locally, the others'
        received from their peers."""
        out = torch.empty((req.ids.shape[0], *self.local.shape[1:]), dtype=self.local.dtype)
        flat = out.view(out.shape[0], self._local_2d.shape[1])  # rows of any shape (labels: one value) as 2-D
        copy_rows(flat, req.mine, self._local_2d, req.ids[req.mine] - self.lo)  # one pass, without the GIL
        for p, pos in req.asked:
            sock = self._socks[p]
            n = _recv_count(sock)
            if n != len(pos):
                raise PeerRowsError(f"partition {p}'s row server answered {n} rows for {len(pos)} ids")
            got = torch.empty((len(pos), flat.shape[1]), dtype=self.local.dtype)
            _recv_exact(sock, _bytes_of(got))
            copy_rows(flat, pos, got, np.arange(len(pos)))
        return out

    def close(self) -> None:
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()


def machine_address(partition: int, ip_config: str | None = None) -> str | None:
    """This machine's address in DGL's ip_config (line k = machine k), or None without one."""
    path = ip_config or os.environ.get("DGL_IP_CONFIG")
    if not path or not Path(path).is_file():
        return None
    lines = [ln.split() for ln in Path(path).read_text().splitlines() if ln.strip()]
    return lines[partition][0] if partition < len(lines) else None


def open_peer_rows(feat, bounds: np.ndarray, partition: int) -> PeerRows | None:
    """Serve this machine's rows of DistTensor ``feat`` and connect to the other machines' servers; every
    trainer calls it at the same point (an all-gather of addresses over the process group). The server lives
    as long as the process (its threads are daemons): peers may still read after this trainer is done.

    None (reads stay DistDGL's) without a process group or an ip_config, where every trainer then gets None.
    """
    dist = torch.distributed
    address = machine_address(partition)
    if not (dist.is_available() and dist.is_initialized()):
        return None
    local = local_part(feat)  # the partition's rows in this machine's shared memory
    server = RowServer(local, partition_start(bounds, partition)) if address else None
    table: list = [None] * dist.get_world_size()
    dist.all_gather_object(table, (partition, address, server.port if server else None))
    if any(addr is None for _, addr, _ in table):
        if server:
            server.close()
        return None
    servers: dict[int, list[tuple[str, int]]] = {}  # each partition's row servers (one per trainer), in rank order
    for part, addr, port in table:
        servers.setdefault(part, []).append((addr, port))
    rank = dist.get_rank()
    lane = sum(1 for part, _, _ in table[:rank] if part == partition)  # spread a machine's readers over its peers
    missing = [p for p in range(len(bounds)) if p not in servers]
    if missing:
        raise PeerRowsError(f"no trainer serves partition {missing[0]}'s rows")
    peers = [servers[p][lane % len(servers[p])] for p in range(len(bounds))]
    log.info("peer rows ready", partition=partition, port=server.port, lane=lane)
    return PeerRows(local, bounds, partition, peers)
