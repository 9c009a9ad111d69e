"""Where the trainer's minibatches come from: the asynchronous prefetcher.

While the trainer trains on minibatch i, the sampling thread samples minibatch i+1 (with a
look-ahead policy, i+1+W: the W minibatches after the one it prepares stay sampled) and
plans its fetch through :class:`rudder_agent.attach.BufferedFeatures` (buffer lookup, the
controller's latest decision, the replacement's ids); the pull thread reads what the buffer does
not serve, from the owning machines' trainers (peer_rows.py), while the sampling thread goes on
to minibatch i+2. With ``--prefetch P`` they go on up to minibatch i+P (sampling one further).
Reading through DistDGL (``--pull-from servers``) or into a machine-shared buffer, one thread
samples and reads in turn. With the ``none`` controller there is no buffer: DistDGL as shipped,
plus the overlap. The stream runs across epochs: while the trainer trains an epoch's last
minibatches, the sampling thread samples the next epoch's first ones (a look-ahead policy's
window), so an epoch does not start by waiting for them.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from rudder_agent.attach import BufferedFeatures, PlannedMinibatch, lookahead
from rudder_agent.config import TrainConfig
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.records.recorder import RunRecorder
from rudder_agent.records.summary import link_rate
from rudder_agent.stages import wall

CORRUPT_ENV = "RUDDER_TESTING_CORRUPT_AT_STEP"
"""Testing aid: trainer 0 adds 1 to every buffered row before this step."""


def pull_chunk_bytes(cfg: TrainConfig) -> int:
    """Bytes of one pull chunk: ``pull_chunk_ms`` of the emulated link's rate (0 where the rate is not known)."""
    rate = link_rate(cfg)
    return int(rate * cfg.pull_chunk_ms / 1000) if rate and cfg.pull_chunk_ms else 0


def epoch_order(loader, seed: int, epoch: int) -> Iterator:
    """``iter(loader)`` over epoch ``epoch``'s shuffle: DistDataLoader's own (a permutation of its last order), drawn
    from a generator seeded ``seed + epoch`` rather than torch's global one. The sampling thread starts an epoch
    while the trainer still trains the last, drawing its dropout from the global generator; the order is the one
    ``torch.manual_seed(seed + epoch)`` then a shuffling ``iter(loader)`` gives (a user's script, attach.py)."""
    perm = torch.randperm(len(loader.data_idx), generator=torch.Generator().manual_seed(seed + epoch))
    loader.data_idx = loader.data_idx[perm]
    return iter(loader)


@dataclass
class Prepared:
    """A minibatch ready to train on."""

    blocks: list
    x: torch.Tensor
    y: torch.Tensor
    metrics: MinibatchMetrics


class FeatureSource:
    """Prefetches sampled minibatches with their features; records the access trace if asked."""

    def __init__(self, g, cfg: TrainConfig, rank: int, loader, minibatches_per_epoch: int, recorder: RunRecorder):
        if loader.shuffle:
            raise ValueError("FeatureSource shuffles each epoch itself (epoch_order): give it a loader with "
                             "shuffle=False")
        self.cfg, self.recorder = cfg, recorder
        self.per_epoch = minibatches_per_epoch
        self.features = BufferedFeatures(g, cfg.buffer, total_minibatches=cfg.epochs * minibatches_per_epoch,
                                         dataset=cfg.dataset, feat=cfg.node_data.feat, rank=rank, verify=cfg.verify,
                                         trainers_per_machine=cfg.trainers_per_machine, seed=cfg.seed,
                                         record=False, pull_from=cfg.pull_from,
                                         pull_chunk_bytes=pull_chunk_bytes(cfg))
        self._pulls = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rudder-pull") \
            if self.features.pipelined else None
        self.labels = self.features.peer_reader(g.ndata[cfg.node_data.label])  # as the features: beside the RPC
        self.link_gate = self.features.gate  # the training loop closes it around its backward pass
        self.corrupt_at = int(os.environ[CORRUPT_ENV]) if rank == 0 and CORRUPT_ENV in os.environ else None
        recorder.trace_meta(self.features.trace_meta(minibatches_per_epoch, cfg))
        # every epoch's minibatches in order, each with the window of its epoch, read on the sampling thread
        self._sampled = lookahead(((epoch, epoch_order(loader, cfg.seed, epoch)) for epoch in range(cfg.epochs)),
                                  self.features.window)
        self._stream: Iterator[Prepared] | None = None

    def minibatches(self, epoch: int) -> Iterator[Prepared]:
        """Yield epoch ``epoch``'s minibatches (epochs are asked for in order); up to ``prefetch`` later ones are
        prepared while the caller trains, the next epoch's first ones too.

        One thread samples and plans every epoch's minibatches in order (and, pulling from peers, one other fills
        them in that order), so a deeper queue changes only how early a minibatch's reads start, never what is
        sampled, fetched or decided. The sampling runs across epochs: the next epoch's first minibatches are
        sampled while this epoch's last ones are planned, but a look-ahead window ends with its epoch, as the
        keep policy's replays assume (attach.lookahead).
        """
        if self._stream is None:
            self._stream = self._all_minibatches()
        for _ in range(self.per_epoch):
            if (mb := next(self._stream, None)) is None:
                raise RuntimeError(f"the loader gave fewer than {self.per_epoch} minibatches in epoch {epoch}")
            if mb.metrics.epoch != epoch:
                raise RuntimeError(f"epoch {epoch} asked for, minibatch {mb.metrics.step} is of epoch "
                                   f"{mb.metrics.epoch}: epochs must be asked for in order")
            yield mb

    def _all_minibatches(self) -> Iterator[Prepared]:
        if self._pulls is None:
            yield from self.features.sampler.results(self._prepare, self.cfg.prefetch)
            return
        # planned one further than pulled: the sampling thread plans i+2 while the pull thread reads i+1
        for pulled in self.features.sampler.results(self._plan, self.cfg.prefetch + 1):
            yield pulled.result()

    def _plan(self) -> Future | None:
        """On the sampling thread: sample and plan the next minibatch, read its labels; hand its pull on."""
        if (mb := self.features.plan_next(self._sampled)) is None:
            return None
        y = self._labels(mb.seeds, mb.metrics.step, mb.input_nodes)
        mb.metrics.ts_plan_end = wall(time.perf_counter())
        return self._pulls.submit(self._fill, mb, y)

    def _fill(self, mb: PlannedMinibatch, y: torch.Tensor) -> Prepared:
        """On the pull thread, in plan order: the minibatch's rows, from the buffer and the peers."""
        if self.corrupt_at == mb.metrics.step:
            self._corrupt()
        return Prepared(mb.blocks, self.features.fill(mb), y, mb.metrics)

    def _prepare(self) -> Prepared | None:
        if (got := self.features.next_minibatch(self._sampled)) is None:
            return None
        input_nodes, seeds, blocks, x, metrics = got
        if self.corrupt_at == self.features.step:  # before the next fetch (nothing touches the rows between two)
            self._corrupt()
        y = self._labels(seeds, metrics.step, input_nodes)
        metrics.ts_fetch_end = wall(time.perf_counter())  # the labels too: ready to train (stages.py)
        return Prepared(blocks, x, y, metrics)

    def _labels(self, seeds: torch.Tensor, step: int, input_nodes: torch.Tensor) -> torch.Tensor:
        """On the sampling thread, either fetch shape: the seeds' labels; the minibatch's inputs into the trace."""
        self.recorder.accessed(step, input_nodes.numpy())
        return self.labels(seeds).long()

    def _corrupt(self) -> None:
        f = self.features
        if f.buffer is not None:
            rows = f.segment.rows if f.segment is not None else f.buffer._rows
            rows[torch.from_numpy(np.flatnonzero(f.buffer.slot_ids >= 0))] += 1  # served hits now differ

    def summary(self) -> dict:
        return self.features.summary()

    def decisions(self) -> list:
        return self.features.decisions()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
        if self._pulls is not None:
            self._pulls.shutdown(wait=True)
        self.features.close()
