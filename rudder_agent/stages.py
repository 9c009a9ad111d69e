"""Stage timers of one minibatch: when each thread of a trainer did what, for a timeline (kind=minibatch fields).

The threads of a trainer work on minibatches (:mod:`rudder_agent.cluster.fetch`): the sampling thread samples
minibatch i+1 and fetches its features (pulling from peers, it plans minibatch i+2 while a pull thread receives
i+1's rows) while the main thread trains on minibatch i. The fetch's stamps are taken in
:class:`rudder_agent.attach.BufferedFeatures`; the main thread's by :class:`TrainStages`.

Every timer reads ``time.perf_counter()`` (monotonic, so a duration is the difference of two readings); a
*stamp* (the ``ts_*`` fields) is that reading moved onto the wall clock by one offset taken as this module is
imported (:func:`wall`). Within a trainer the stamps of both threads are therefore exactly comparable; between
trainers they are as close as the machines' clocks (the same clock on the local cluster).

What the sampling thread's timers include (one minibatch after the other, up to ``--prefetch`` ahead):

- ``t_sample`` (``ts_sample_start``..``ts_sample_end``): the loader's ``next()``. With a look-ahead window W it
  samples the minibatch W ahead; the ones in between were sampled before.
- ``ts_fetch_start``..``ts_fetch_end``: the buffer's step (the controller's decision, lookup, the one read of
  the rows the buffer does not serve, assembly: ``t_wait + t_fetch``, of which ``t_pull`` is the read) and the
  read of the seeds' labels; at its end the minibatch is ready for the main thread. Pulling from peers, the
  span covers the plan on the sampling thread and the fill on the pull thread (with the wait between them, when
  the pull thread is still on earlier minibatches); ``t_fetch`` is the two parts' time, ``t_pull`` the fill's
  wait for the peers' rows (asked for when the minibatch was planned).

What the main thread's timers include (``t_forward + t_backward + t_allreduce_wait + t_optimizer = t_train``, up
to the microseconds of reading the loss):

- ``t_batch_wait``: the ``for`` loop asking for the next prepared minibatch until it has it. Zero-ish when the
  sampling thread is ahead; otherwise training stands idle because sampling or fetching is behind. The first
  minibatch of an epoch also waits for the epoch's loader to start.
- ``t_forward``: ``model(blocks, x)``, the loss and ``optimizer.zero_grad()`` (grads set to None: microseconds).
  DDP's forward does no communication here: the model has no buffers to broadcast.
- ``t_backward``: the backward computation: ``loss.backward()`` until autograd has computed the last gradient.
  DDP launches each gradient bucket's all-reduce as its gradients are ready, so communication that overlaps the
  computation is inside it (and slows it only by the CPU it takes).
- ``t_allreduce_wait``: the rest of ``loss.backward()``: DDP waiting for the all-reduces still running when the
  computation ended, then copying the reduced gradients back (microseconds). This is the all-reduce time
  training cannot hide. It is measured from a callback that autograd runs when the computation ends, queued
  (by a hook on the loss's gradient) before DDP's own end-of-backward callback, which does the waiting. The
  all-reduce itself is DDP's built-in one, untouched.
- ``t_optimizer``: ``optimizer.step()``.

The two hooks run Python, so each takes the GIL once (the sampling thread may hold it for a moment); DGL's own
backward functions already take it several times per minibatch.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch

from rudder_agent.link_gate import LinkGate
from rudder_agent.metrics import MinibatchMetrics

_WALL_OFFSET = time.time() - time.perf_counter()

T = TypeVar("T")


def wall(perf: float) -> float:
    """A ``time.perf_counter()`` reading as wall-clock seconds since the epoch (the scale of ``time.time()``)."""
    return perf + _WALL_OFFSET


class TrainStages:
    """The main thread's stage timers of one trainer: its wait for each minibatch, then each training stage.

    ``for mb in stages.timed(minibatches)`` times the wait for each; inside the loop, ``with stages.forward()``,
    ``with stages.backward(loss)`` and ``with stages.optimizer()`` time the stages; ``stages.record(metrics)``
    writes them into the minibatch's record (unused stages stay 0: nothing trained with ``--trace-only``).
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._gate: LinkGate | None = None
        self.waited_since = self.arrived = 0.0
        self.t_forward = self.t_backward = self.t_allreduce_wait = self.t_optimizer = 0.0
        self._computed: float | None = None

    def timed(self, minibatches: Iterable[T]) -> Iterator[T]:
        """The minibatches, each taken from ``minibatches`` with the time it took noted."""
        it = iter(minibatches)
        while True:
            self._reset()
            self.waited_since = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                return
            self.arrived = time.perf_counter()
            yield item

    @contextmanager
    def forward(self) -> Iterator[None]:
        tic = time.perf_counter()
        yield
        self.t_forward = time.perf_counter() - tic

    @contextmanager
    def backward(self, loss: torch.Tensor, gate: LinkGate | None = None) -> Iterator[None]:
        """Times ``loss.backward()`` inside, split where the computation ends and DDP's wait begins; ``gate`` is
        closed from that point (DDP launches the all-reduce) to the end, so that pulls let the all-reduce go first."""
        self._gate = gate
        loss.register_hook(self._queue_computed)
        tic = time.perf_counter()
        try:
            yield
        finally:
            if gate is not None:
                gate.open()
        toc = time.perf_counter()
        computed = self._computed if self._computed is not None else toc
        self.t_backward, self.t_allreduce_wait = computed - tic, toc - computed

    def _queue_computed(self, grad: torch.Tensor) -> None:
        # The loss's gradient is the first thing backward computes: the callback queued now runs once the whole
        # computation is done, ahead of the one DDP queues later (when its last bucket is launched) to wait.
        torch.autograd.Variable._execution_engine.queue_callback(self._note_computed)

    def _note_computed(self) -> None:
        self._computed = time.perf_counter()
        if self._gate is not None:
            self._gate.close()

    @contextmanager
    def optimizer(self) -> Iterator[None]:
        tic = time.perf_counter()
        yield
        self.t_optimizer = time.perf_counter() - tic

    def record(self, metrics: MinibatchMetrics) -> None:
        """Write the wait for this minibatch and its training stages, until now, into its record."""
        now = time.perf_counter()
        metrics.t_batch_wait = self.arrived - self.waited_since
        metrics.t_train = now - self.arrived
        metrics.ts_train_start, metrics.ts_train_end = wall(self.arrived), wall(now)
        metrics.t_forward, metrics.t_backward = self.t_forward, self.t_backward
        metrics.t_allreduce_wait, metrics.t_optimizer = self.t_allreduce_wait, self.t_optimizer
