"""Remote neighbour sampling that does not depend on which trainer a server happens to serve first.

A DistDGL 2.1 server samples every trainer's remote neighbours from one random engine, in the
order requests arrive. With three or more partitions several trainers ask the same server, so
the arrival order, and with it every trainer's samples, changes from run to run (measured: two
`none` runs on 4 partitions differed from the first minibatch). Here the server seeds its engine
before each sampling request from (run seed, the request's seed nodes and fan-out, how many
requests its client has sent): each trainer's samples depend only on its own requests, whose
order its sampling thread fixes (not on DGL's client ids, which follow connection order).
Samples stay uniform; a run is repeatable.
"""

from __future__ import annotations

import hashlib

import dgl
import numpy as np
from dgl.distributed import graph_services, rpc

_SEED_MOD = 2**31 - 1


def seed_sampling_per_request(base_seed: int) -> None:
    """Patch this server process's sampling requests (call before it starts serving)."""
    state = {"client": -1, "counts": {}}
    receive = rpc.recv_request

    def recv_request(*args, **kwargs):
        req, client_id, group_id = receive(*args, **kwargs)
        state["client"] = (client_id, group_id)
        return req, client_id, group_id

    def seeded(process):
        def process_request(self, server_state):
            client = state["client"]
            n = state["counts"].get(client, 0)
            state["counts"][client] = n + 1
            h = hashlib.blake2b(f"{base_seed}/{n}/{self.fan_out}".encode(), digest_size=8)
            h.update(np.ascontiguousarray(np.asarray(self.seed_nodes)).tobytes())
            dgl.seed(int.from_bytes(h.digest(), "little") % _SEED_MOD)
            return process(self, server_state)
        return process_request

    rpc.recv_request = recv_request
    for cls in (graph_services.SamplingRequest, graph_services.SamplingRequestEtype):
        cls.process_request = seeded(cls.process_request)
