"""Where a trainer's minibatch features come from: the asynchronous prefetcher.

While the trainer trains on minibatch i, one worker thread samples minibatch i+1, looks
its remote inputs up in the persistent buffer, applies the controller's latest decision
and reads every row the buffer does not serve (local rows, remote misses and replacement
rows) with ONE DistTensor read. With the ``none`` controller there is no buffer and this
is DistDGL as shipped, plus the overlap.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator

import dgl
import numpy as np
import torch

from rudder_agent.buffer.engine import BufferEngine
from rudder_agent.buffer.persistent import PersistentBuffer
from rudder_agent.buffer.policy import ScoringPolicy
from rudder_agent.config import TrainConfig
from rudder_agent.controllers import make_controller
from rudder_agent.controllers.runner import ControllerRunner
from rudder_agent.decision import DecisionRequest, StaticFacts
from rudder_agent.log import get_logger
from rudder_agent.metrics import MinibatchMetrics, minibatch_record
from rudder_agent.traces import TraceMeta, TraceWriter, write_trace_meta

log = get_logger(__name__)


class ServedRowMismatch(AssertionError):
    """A feature row served to the model differs from the DistTensor's row (never expected)."""


@dataclass
class Prepared:
    """A minibatch ready to train on."""

    blocks: list
    x: torch.Tensor
    y: torch.Tensor
    metrics: MinibatchMetrics


def halo_nodes(g) -> np.ndarray:
    """Global ids of the non-inner (halo) nodes of this trainer's partition."""
    lp = g.local_partition
    return lp.ndata[dgl.NID][lp.ndata["inner_node"] == 0].numpy()


class FeatureSource:
    """Prefetches minibatches through the buffer engine, steered by the configured controller."""

    def __init__(self, g, cfg: TrainConfig, bounds: np.ndarray, my_part: int, rank: int, minibatches_per_epoch: int):
        self.g, self.cfg, self.rank = g, cfg, rank
        self.feat = g.ndata["feat"]
        self.row_bytes = int(self.feat.shape[1]) * torch.tensor([], dtype=self.feat.dtype).element_size()
        self.controller = make_controller(cfg.buffer)
        halo = halo_nodes(g)
        self.capacity = math.ceil(cfg.buffer.fraction * len(halo)) if self.controller.uses_buffer else 0
        policy = ScoringPolicy(delta=cfg.buffer.delta, gamma=cfg.buffer.gamma,
                               **({"tau": cfg.buffer.tau} if cfg.buffer.tau is not None else {}))
        buffer = (PersistentBuffer(self.capacity, int(self.feat.shape[1]), policy, dtype=self.feat.dtype)
                  if self.controller.uses_buffer else None)
        self.buffer = buffer
        self.engine = BufferEngine(buffer, bounds, my_part)
        self.controller.setup(StaticFacts(
            dataset=cfg.dataset, num_nodes=g.num_nodes(), num_edges=g.num_edges(), num_parts=cfg.parts,
            partition=my_part, local_nodes=int(bounds[my_part] - (bounds[my_part - 1] if my_part else 0)),
            halo_nodes=len(halo), capacity=self.capacity,
            total_minibatches=cfg.epochs * minibatches_per_epoch, feature_dim=int(self.feat.shape[1]),
        ))
        self.warm_ids = self._warm_start(halo)
        self.warm_rows = len(self.warm_ids)
        self.runner = ControllerRunner(self.controller, cfg.buffer.mode) if buffer is not None else None
        self._window: list[MinibatchMetrics] = []
        self.verified_rows = 0
        # DGL's RNG is thread-local: seed the sampling thread so runs are reproducible.
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rudder-prefetch",
                                       initializer=dgl.seed, initargs=(cfg.seed + rank,))
        self.trace = None
        if cfg.trace:
            self.trace = TraceWriter(cfg.out_dir / f"trace-rank{rank}.rtf")
            write_trace_meta(cfg.out_dir / f"trace-rank{rank}.json", TraceMeta(
                rank=rank, partition=my_part, part_bounds=bounds.tolist(), capacity=self.capacity,
                halo_nodes=len(halo), feature_dim=int(self.feat.shape[1]), row_bytes=self.row_bytes,
                minibatches_per_epoch=minibatches_per_epoch, facts=self.controller.facts, config=cfg,
                warm_ids=self.warm_ids.tolist(),
            ))
        log.info("feature source ready", controller=self.controller.name, halo=len(halo), capacity=self.capacity,
                 mode=self.runner.mode if self.runner else None, warm_rows=self.warm_rows)

    def _warm_start(self, halo: np.ndarray) -> np.ndarray:
        """Load the controller's warm-start ids (MassiveGNN only); returns the ids loaded."""
        if self.buffer is None or len(halo) == 0:
            return np.empty(0, dtype=np.int64)
        degrees = self.g.in_degrees(torch.from_numpy(halo)).numpy()
        ids = np.asarray(self.controller.warm_start(halo, degrees, self.capacity), dtype=np.int64)
        if len(ids):
            self.buffer.warm_load(ids, self.feat[torch.from_numpy(ids)])
        return ids

    def minibatches(self, loader, epoch: int, start_step: int) -> Iterator[Prepared]:
        """Yield the epoch's minibatches; the next one is prepared while the caller trains."""
        it = iter(loader)
        step = start_step
        future = self.pool.submit(self._prepare, it, epoch, step)
        while True:
            prepared = future.result()
            if prepared is None:
                return
            step += 1
            future = self.pool.submit(self._prepare, it, epoch, step)
            yield prepared

    def _decision(self, step: int):
        """The decision to apply now, and how long the prefetcher waited for it."""
        if self.runner is None:
            return None, 0.0
        if self.runner.mode == "inline":
            request = DecisionRequest(step=step, window=self._window, stale=self.buffer.stale_count(),
                                      occupancy=self.buffer.occupancy, capacity=self.capacity)
            self._window = []
            return self.runner.submit(request), 0.0
        tic = time.perf_counter()
        outcome = self.runner.take()
        return outcome, time.perf_counter() - tic

    def _prepare(self, it, epoch: int, step: int) -> Prepared | None:
        t0 = time.perf_counter()
        try:
            input_nodes, seeds, blocks = next(it)
        except StopIteration:
            return None
        t1 = time.perf_counter()
        outcome, t_wait = self._decision(step)
        plan = self.engine.prepare(input_nodes.numpy(), replace=outcome is not None and outcome.decision == "replace")
        pulled = self.feat[torch.from_numpy(plan.pull_ids)]
        x = self.engine.complete(plan, pulled)
        y = self.g.ndata["label"][seeds].long()
        t2 = time.perf_counter()
        if self.cfg.verify:
            self._verify(x, input_nodes)
        if self.trace is not None:
            self.trace.write(step, plan.input_nodes)
        metrics = minibatch_record(
            plan.counts, outcome, rank=self.rank, epoch=epoch, step=step, row_bytes=self.row_bytes,
            requested=self.runner is not None, t_sample=t1 - t0, t_fetch=t2 - t1 - t_wait, t_wait=t_wait,
        )
        self._request(metrics)
        return Prepared(blocks, x, y, metrics)

    def _request(self, metrics: MinibatchMetrics) -> None:
        """Send this minibatch's metrics to the controller (inline ones read them next step)."""
        if self.runner is None:
            return
        if self.runner.mode == "inline":
            self._window.append(metrics)
            return
        self.runner.submit(DecisionRequest(step=metrics.step, window=[metrics], stale=metrics.stale,
                                           occupancy=metrics.occupancy, capacity=self.capacity))

    def _verify(self, x: torch.Tensor, input_nodes: torch.Tensor) -> None:
        """Compare every served row with a direct DistTensor read (testing/auditing aid)."""
        truth = self.feat[input_nodes]
        if not torch.equal(x, truth):
            bad = int((x != truth).any(dim=1).sum())
            raise ServedRowMismatch(f"{bad} of {len(x)} served feature rows differ from the DistTensor")
        self.verified_rows += len(x)

    def summary(self) -> dict:
        """This trainer's controller and buffer facts for summary.json."""
        out = {"controller": self.controller.name, "capacity": self.capacity, "warm_rows": self.warm_rows,
               "verified_rows": self.verified_rows, "agent": self.controller.run_record()}
        if self.runner is not None:
            s = self.runner.stats
            out.update(requests=s.requests, dropped=s.dropped, decisions=dict(s.decisions),
                       latencies_s=s.latencies_s, controller_wait_s=s.wait_s)
        return out

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        if self.runner is not None:
            self.runner.close()
        if self.trace is not None:
            self.trace.close()
