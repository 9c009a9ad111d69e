"""DistTensor reads on a thread of their own, so reading features never changes what DistDGL samples.

DGL's C++ random engine is thread-local and serves two masters: neighbour sampling and the
server a remote pull is sent to. A read between two samples therefore changes the next sample
(measured: DistDGL 2.1, 2 partitions, minibatch 1 onwards). Reading on another thread leaves the
sampling thread's engine to sampling alone, so a run samples the same neighbours whatever is read
between samples, and when: without a buffer, with one, with a look-ahead window of any size.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch


class DistReader:
    """Reads rows of DistTensors on one dedicated thread; the caller waits (never two RPCs at once)."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rudder-read")

    def __call__(self, tensor, ids: torch.Tensor | np.ndarray) -> torch.Tensor:
        """``tensor[ids]``: from this machine's shared memory when every id is this machine's (no RPC, on the
        calling thread: a trainer's labels, as a rule), else read on the reader thread."""
        index = torch.from_numpy(ids) if isinstance(ids, np.ndarray) else ids
        if (local := local_rows(tensor, index)) is not None:
            return local
        return self._pool.submit(tensor.__getitem__, index).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def local_part(tensor) -> torch.Tensor | None:
    """This machine's part of a DistTensor, in its shared memory: the part DistDGL itself reads locally (None for
    anything else). The one place that reaches into DGL 2.1's private attributes for it."""
    store = getattr(getattr(tensor, "kvstore", None), "data_store", None)
    name = getattr(tensor, "_name", None)
    return store[name] if store is not None and name in store else None


def local_rows(tensor, index: torch.Tensor) -> torch.Tensor | None:
    """``tensor[index]`` from this machine's part of a DistTensor; None where an id is another machine's (or
    ``tensor`` is not a DistTensor)."""
    policy, part = getattr(tensor, "_part_policy", None), local_part(tensor)
    if policy is None or part is None:
        return None
    if index.shape[0] and not bool((policy.to_partid(index) == policy.part_id).all()):
        return None
    return part[policy.to_local(index)]
