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
        """``tensor[ids]``, read on the reader thread."""
        index = torch.from_numpy(ids) if isinstance(ids, np.ndarray) else ids
        return self._pool.submit(tensor.__getitem__, index).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
