"""Attach Rudder to any DistDGL training loop: one object, one call per minibatch.

    features = BufferedFeatures(g, controller="llm", total_minibatches=num_epochs * len(loader))
    for epoch in range(num_epochs):
        for input_nodes, seeds, blocks, x, metrics in features.iterate(loader, epoch):  # x: the input features
            y = features.read(g.ndata["labels"], seeds)  # other reads off the sampling thread too
            ...
    features.close()

Started by ``rudder train --trainer SCRIPT -- ARGS``, the object takes the run's settings (buffer, keep policy,
controller, model, seed) from the environment and writes the run's metrics, decisions and traces, as the
built-in trainer does; started otherwise (DGL's launch tool), it takes the keyword settings given.

The controller runs beside the loop (a daemon thread for the LLM agent), so fetching never
waits for it in asynchronous mode. Every served row equals the DistTensor's row.

With several trainers per machine (``trainers_per_machine=T``, or ``LOCAL_WORLD_SIZE`` as DGL's launch tool
sets it), the machine's trainers share one buffer of T times the capacity in its /dev/shm (``scope="machine"``,
the default; buffer/shared.py).
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import dgl
import numpy as np
import torch

from rudder_agent.buffer.counterfactual import Outlook
from rudder_agent.buffer.engine import BufferEngine, partition_start, warm_up
from rudder_agent.buffer.persistent import PersistentBuffer
from rudder_agent.buffer.policy import ScoringPolicy
from rudder_agent.buffer.shared import SHM_DIR, MachineSegment, SharedEngine
from rudder_agent.attach_settings import AttachSettings
from rudder_agent.config import BufferConfig
from rudder_agent.controllers.wiring import open_channel
from rudder_agent.decision import StaticFacts
from rudder_agent.dist_reads import DistReader
from rudder_agent.link import link_bytes
from rudder_agent.link_gate import LinkGate
from rudder_agent.log import get_logger
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.paths import SHM_PREFIX_ENV
from rudder_agent.peer_rows import PeerRows, Request, open_peer_rows
from rudder_agent.records.recorder import RunRecorder
from rudder_agent.records.trace import TraceMeta
from rudder_agent.registry import make_controller
from rudder_agent.sampling_thread import SamplingThread
from rudder_agent.settings.controllers import ControllerSettings
from rudder_agent.settings.keep import KeepSettings
from rudder_agent.stages import wall
from rudder_agent.step import MinibatchStep, Planned

log = get_logger(__name__)


class ServedRowMismatch(AssertionError):
    """A feature row served to the model differs from the DistTensor's row (never expected)."""


def lookahead(epochs: Iterable[tuple[int, Iterable]], window: int) -> Iterator[tuple]:
    """``(epoch, item, next_items)`` for every item of every ``(epoch, items)``, where ``next_items`` are the up to
    ``window`` items of the same epoch read after it.

    Items are read in order, one at a time, and at most ``window + 1`` are held: an epoch's first items are read
    while the last epoch's last ones are handed out, but a window ends with its epoch (as replays see it). Each
    epoch's items are iterated once, as a for loop would, and an iterator is read as it is: a DistDataLoader is
    its own iterator and reshuffles on every iter().
    """
    stream = ((epoch, item) for epoch, items in epochs for item in _read_once(items))
    queue: deque = deque()
    while True:
        while len(queue) <= window:
            try:
                queue.append(next(stream))
            except StopIteration:
                break
        if not queue:
            return
        epoch, current = queue.popleft()
        yield epoch, current, [item for e, item in queue if e == epoch]


def _read_once(items: Iterable) -> Iterator:
    """``items``' items, with at most one iter(): none on an iterator (reading its ``__next__`` until it stops)."""
    if not isinstance(items, Iterator):
        return iter(items)
    return iter(items.__next__, _READ_ONCE_END)  # stops at StopIteration too, never calling iter(items)


_READ_ONCE_END = object()


def halo_nodes(g) -> np.ndarray:
    """Global ids of the non-inner (halo) nodes of this trainer's partition."""
    lp = g.local_partition
    return lp.ndata[dgl.NID][lp.ndata["inner_node"] == 0].numpy()


def machine_buffer_path(g, partition: int) -> Path:
    """Where machine ``partition``'s shared buffer lives: named after the run, so its leftovers can be removed.

    Under ``rudder train`` the run's shared-memory prefix (every segment of the run starts with it, and the launcher
    removes them at the end); in a user's own launch, the graph's name and the DDP rendezvous port.
    """
    prefix = os.environ.get(SHM_PREFIX_ENV) or f"rudder_{getattr(g, 'graph_name', 'graph')}_{os.environ.get('MASTER_PORT', '0')}_"
    return SHM_DIR / f"{prefix}m{partition}_buffer"


def partition_bounds(g) -> np.ndarray:
    """Cumulative upper node-id bound of each partition (DistDGL ids are contiguous per partition)."""
    pb = g.get_partition_book()
    return np.asarray([int(pb.partid2nids(p)[-1]) + 1 for p in range(pb.num_partitions())], dtype=np.int64)


@dataclass(slots=True)
class PlannedMinibatch:
    """A sampled minibatch whose buffer step is planned; its features come with :meth:`BufferedFeatures.fill`."""

    input_nodes: torch.Tensor
    seeds: torch.Tensor
    blocks: list
    planned: Planned
    asked: Request  # its rows, asked of the peers as it was planned
    truth: torch.Tensor | None  # --verify: the DistTensor's rows, read on the sampling thread

    @property
    def metrics(self) -> MinibatchMetrics:
        return self.planned.metrics


def _sample(it: Iterator[tuple]) -> tuple | None:
    """The next ``(epoch, input_nodes, seeds, blocks, ahead, tic, sampled)`` of ``lookahead(epochs, window)``,
    timed; None when the loaders are exhausted."""
    tic = time.perf_counter()
    try:
        epoch, (input_nodes, seeds, blocks), ahead = next(it)
    except StopIteration:
        return None
    return epoch, input_nodes, seeds, blocks, ahead, tic, time.perf_counter()


def _stamp(metrics: MinibatchMetrics, tic: float, sampled: float) -> None:
    """The sampling timer and the timeline's stamps up to the fetch's start (stages.py)."""
    metrics.t_sample = sampled - tic
    metrics.ts_sample_start, metrics.ts_sample_end = wall(tic), wall(sampled)
    metrics.ts_fetch_start = wall(sampled)


class BufferedFeatures:
    """A DistTensor read through this trainer's persistent buffer, steered by a controller.

    Args:
        g: the trainer's ``dgl.distributed.DistGraph``.
        buffer: the buffer's settings as one tree; or give ``controller`` and ``policy`` instead (not both).
        total_minibatches: minibatches this trainer will fetch in all (epochs x minibatches per epoch): the
            controller plans with it.
        controller: ``"none"``, ``"fixed"``, ``"massivegnn"``, ``"llm"``, ``"classifier"``, or their settings
            (e.g. ``AgentConfig(model="ollama:gemma3:4b")``).
        policy: what to keep: ``"lookahead"``, ``"lfu"``, ``"decay"``, or their settings.
        feat: the node-data name of the features (``rudder train --feat-key``; default ``feat``).
        rank: this trainer's rank (default: ``RANK``, else the process group's).
        verify: compare every served row with a direct DistTensor read.
        trainers_per_machine: trainers on this machine (default: ``LOCAL_WORLD_SIZE``, else 1).
        dataset: the graph's name, told to the controller.
        seed: under it, :meth:`iterate` seeds each epoch's shuffle and the sampling thread as the built-in
            trainer does, so a run repeats and compares with the built-in one.
        record: write the run's metric stream (default: when ``rudder train`` started this process).
        pull_from: where the rows the buffer does not serve are read: ``"peers"`` (the default), from the owning
            machine's trainers over a socket of their own (peer_rows.py; needs the process group and DGL's
            ``DGL_IP_CONFIG``, else DistDGL's read), so the built-in trainer pulls one minibatch while it samples
            the next; ``"servers"``, DistDGL's RPC read.
        pull_chunk_bytes: read the rows the buffer does not serve in chunks of this many bytes, each after
            ``self.gate`` (closed by the training loop around its backward pass: the all-reduce goes first on a
            slow link); 0: one read.

    Under ``rudder train`` every setting not given is the run's; the buffer's settings, ``rank`` and
    ``trainers_per_machine`` given must agree with the run's (else RudderError names both), while ``feat``,
    ``verify``, ``seed`` and ``record`` given are the script's own choice.
    """

    def __init__(self, g, buffer: BufferConfig | None = None, *, total_minibatches: int,
                 controller: ControllerSettings | str | None = None, policy: KeepSettings | str | None = None,
                 feat: str | None = None, rank: int | None = None, verify: bool | None = None,
                 trainers_per_machine: int | None = None, dataset: str | None = None, seed: int | None = None,
                 record: bool | None = None, pull_from: str | None = None, pull_chunk_bytes: int = 0):
        s = AttachSettings.resolve(buffer=buffer, controller=controller, policy=policy, feat=feat, rank=rank,
                                   verify=verify, trainers_per_machine=trainers_per_machine, dataset=dataset,
                                   seed=seed, record=record, pull_from=pull_from)
        cfg = s.buffer
        self.g, self.cfg, self.rank, self.verify, self.seed = g, cfg, s.rank, s.verify, s.seed
        rank = s.rank
        self.feat = g.ndata[s.feat]
        self.pull_chunk_bytes, self.gate = pull_chunk_bytes, LinkGate()
        self.read = DistReader()  # every DistTensor read off the sampling thread: reads never change samples
        dim = int(self.feat.shape[1])
        self.row_bytes = dim * torch.tensor([], dtype=self.feat.dtype).element_size()
        self.bounds = partition_bounds(g)
        self.partition = g.get_partition_book().partid
        self.halo = halo_nodes(g)
        peers = open_peer_rows(self.feat, self.bounds, self.partition) if s.pull_from == "peers" else None
        self.peers = peers
        self._peer_reads: list[PeerRows] = [peers] if peers is not None else []  # closed with this object
        self.controller = make_controller(cfg)
        uses_buffer = self.controller.spec.uses_buffer
        self.sharing = s.trainers_per_machine if uses_buffer and cfg.scope == "machine" and \
            s.trainers_per_machine > 1 else 1
        self.capacity = self.sharing * math.ceil(cfg.fraction * len(self.halo)) if uses_buffer else 0
        self.segment: MachineSegment | None = None
        scoring = ScoringPolicy.from_settings(cfg.scoring)
        if uses_buffer:
            warm_up(lambda: cfg.policy.build(cfg.lookahead), cfg.lookahead)  # the kernels' first-call cost, not minibatch 0's
        if self.sharing > 1:
            self.buffer = PersistentBuffer(self.capacity, 0, scoring)  # this trainer's replica of the machine's state
            inner = BufferEngine(self.buffer, self.bounds, self.partition,
                                 cfg.policy.build(cfg.lookahead, self.sharing), lane=rank % self.sharing)
            self.segment = MachineSegment(machine_buffer_path(g, self.partition), self.capacity, dim, self.feat.dtype)
            engine = SharedEngine(inner, self.segment, warm=self._warm_start_ids if self._warm_starts() else None)
            self.warm_ids = engine.warm_ids
        else:
            self.buffer = PersistentBuffer(self.capacity, dim, scoring, dtype=self.feat.dtype) if uses_buffer else None
            engine = inner = BufferEngine(self.buffer, self.bounds, self.partition, cfg.policy.build(cfg.lookahead))
        lo = partition_start(self.bounds, self.partition)
        self.controller.setup(StaticFacts(
            dataset=s.dataset, num_nodes=g.num_nodes(), num_edges=g.num_edges(), num_parts=len(self.bounds),
            partition=self.partition, local_nodes=int(self.bounds[self.partition] - lo), halo_nodes=len(self.halo),
            capacity=self.capacity, total_minibatches=total_minibatches, feature_dim=dim, buffer_sharers=self.sharing,
        ))
        if self.sharing == 1:
            self.warm_ids = self._warm_start()
        outlook = Outlook(inner)  # what-ifs play this trainer's replica forward on its own minibatches
        self.channel = (open_channel(self.controller, self.buffer, cfg.mode, outlook)
                        if self.buffer is not None else None)
        self._step = MinibatchStep(engine, self.channel, outlook, rank=rank, row_bytes=self.row_bytes)
        self.verified_rows = 0
        self.step = 0
        self.run = s.run
        if s.seed is not None:
            dgl.seed(s.seed + rank)  # this thread's generator first, as the built-in trainer's: see sampling_thread.py
        self.sampler = SamplingThread(s.seed + rank if s.seed is not None else None)
        self.recorder = RunRecorder(s.run.out_dir, rank, trace=s.run.trace,
                                    wire=link_bytes if s.run.network == "netns" else None) \
            if s.record and s.run is not None else None
        self._pending: MinibatchMetrics | None = None  # fetched, recorded once the loop comes back (its loss set)
        self._meta_written = False
        log.info("buffered features ready", controller=self.controller.name, halo=len(self.halo),
                 capacity=self.capacity, shared_by=self.sharing, mode=self.channel.label if self.channel else None,
                 warm_rows=len(self.warm_ids), records=str(s.run.out_dir) if self.recorder else None)

    def _warm_starts(self) -> bool:
        return self.buffer is not None and len(self.halo) > 0 and self.controller.spec.warm_starts

    def _warm_start_ids(self) -> tuple[np.ndarray, torch.Tensor]:
        """The controller's warm-start ids (MassiveGNN only) for the whole buffer, and their rows."""
        degrees = self.g.in_degrees(torch.from_numpy(self.halo)).numpy()
        ids = np.asarray(self.controller.warm_start(self.halo, degrees, self.capacity), dtype=np.int64)
        return ids, self.read(self.feat, ids)

    def _warm_start(self) -> np.ndarray:
        """Load the controller's warm-start ids (MassiveGNN only); returns the ids loaded."""
        if not self._warm_starts():
            return np.empty(0, dtype=np.int64)
        ids, rows = self._warm_start_ids()
        if len(ids):
            self.buffer.warm_load(ids, rows)
        return ids

    def _read(self, ids: np.ndarray) -> torch.Tensor:
        """ONE DistTensor read: the rows the buffer does not serve, each hit as a local stand-in row (no traffic).

        With ``pull_chunk_bytes``, in chunks of that many bytes, each after the link gate (link_gate.py)."""
        rows = max(1, self.pull_chunk_bytes // self.row_bytes) if self.pull_chunk_bytes else len(ids)
        if len(ids) <= rows:
            return self._pull(ids)
        chunks = []
        for lo in range(0, len(ids), rows):
            self.gate.wait()
            chunks.append(self._pull(ids[lo:lo + rows]))
        return torch.cat(chunks)

    def _pull(self, ids: np.ndarray) -> torch.Tensor:
        return self.peers(ids) if self.peers is not None else self.read(self.feat, ids)

    def peer_reader(self, tensor) -> Callable[[torch.Tensor | np.ndarray], torch.Tensor]:
        """Rows of another DistTensor partitioned as the nodes (the labels), read as the features are: from peers on
        a connection of their own (this machine's from its shared memory), else through :attr:`read`. Every trainer
        calls it at the same point (the peers exchange addresses)."""
        rows = open_peer_rows(tensor, self.bounds, self.partition) if self.peers is not None else None
        if rows is None:
            return lambda ids: self.read(tensor, ids)
        self._peer_reads.append(rows)
        return rows

    @property
    def pipelined(self) -> bool:
        """Whether a minibatch can be planned while the last one's rows are pulled (:meth:`plan_next`): pulls from
        peers (DistDGL's RPC would run on two threads at once) into a buffer of this trainer's own."""
        return self.peers is not None and self.sharing == 1 and not self.pull_chunk_bytes

    @property
    def window(self) -> int:
        """Minibatches to sample ahead: the keep policy's window, or W for a controller that plays answers forward."""
        return self.cfg.window_for(self.controller.spec.sees_ahead) if self.buffer is not None else 0

    def fetch(self, input_nodes: torch.Tensor, epoch: int = 0,
              upcoming: Sequence[torch.Tensor] = ()) -> tuple[torch.Tensor, MinibatchMetrics]:
        """Input features of one minibatch (hits from the buffer, the rest in ONE pull) and its metrics.

        ``upcoming``: input nodes of the minibatches sampled after this one (at most ``window`` are used).
        When recording, the metrics are written at the next call (or at the epoch's end), so a loss set on
        them in between (``metrics.loss = float(loss)``) is recorded too.
        """
        if self.recorder is not None:
            self._record_pending()
            if self.recorder.epoch != epoch:
                self._end_epoch()
                self.recorder.start_epoch(epoch)
        ahead = [u.numpy() for u in list(upcoming)[: self.window]]
        x, metrics = self._step(input_nodes.numpy(), self._read, epoch=epoch, step=self.step, upcoming=ahead)
        if self.verify:
            self._verify(x, input_nodes)
        self.step += 1
        if self.recorder is not None:
            self.recorder.accessed(metrics.step, input_nodes.numpy())
            self.recorder.decisions(self.decisions())
            self._pending = metrics
        return x, metrics

    def decisions(self) -> list:
        """The controller's answered requests since the last call (DecisionRecords, for the metrics stream)."""
        return self._step.decisions()

    def iterate(self, loader: Iterable, epoch: int = 0) -> Iterator[tuple]:
        """``(input_nodes, seeds, blocks, x, metrics)`` per minibatch of ``loader``, sampling ``window`` ahead.

        The loader is read in order, so the minibatches are the ones it would give without look-ahead. Sampling
        and fetching run on the sampling thread while this one waits (no DGL call of two threads at once); with a
        seed, the epoch's shuffle is seeded from ``seed + epoch``, as in the built-in trainer: the same
        minibatches, the same rows.
        """
        if self.recorder is not None and self.recorder.epoch != epoch:
            self._end_epoch()
            self.recorder.start_epoch(epoch)
        if self.seed is not None:
            torch.manual_seed(self.seed + epoch)  # the loader shuffles with torch's global generator
        it = lookahead([(epoch, iter(loader))], self.window)  # one iter(), as a for loop
        for item in self.sampler.results(lambda: self.next_minibatch(it), depth=0):
            tic = time.perf_counter()
            yield item
            item[-1].t_train = time.perf_counter() - tic
            self._record_pending()
        self._end_epoch()

    def next_minibatch(self, it: Iterator[tuple]) -> tuple | None:
        """Sample the next minibatch of ``lookahead(epochs, window)`` and fetch its features (on the sampling
        thread): ``(input_nodes, seeds, blocks, x, metrics)``, or None when the loaders are exhausted."""
        if (got := _sample(it)) is None:
            return None
        epoch, input_nodes, seeds, blocks, ahead, tic, sampled = got
        x, metrics = self.fetch(input_nodes, epoch, [a[0] for a in ahead])
        _stamp(metrics, tic, sampled)
        metrics.ts_fetch_end = wall(time.perf_counter())
        return input_nodes, seeds, blocks, x, metrics

    def plan_next(self, it: Iterator[tuple]) -> PlannedMinibatch | None:
        """The first half of a pipelined fetch (:attr:`pipelined`), on the sampling thread: sample the next
        minibatch, plan and commit its buffer step, and read what only DistDGL reads (with ``verify``, its rows);
        None when the loader is exhausted. Its rows come with :meth:`fill`, on one other thread, in this order."""
        if self.recorder is not None:
            raise RuntimeError("a pipelined fetch records through its caller (record=False)")
        if (got := _sample(it)) is None:
            return None
        epoch, input_nodes, seeds, blocks, ahead, tic, sampled = got
        upcoming = [a[0].numpy() for a in ahead[: self.window]]
        planned = self._step.plan(input_nodes.numpy(), epoch=epoch, step=self.step, upcoming=upcoming)
        self.step += 1
        _stamp(planned.metrics, tic, sampled)
        asked = self.peers.request(planned.plan.pull_ids)  # the peers answer while the next minibatch samples
        truth = self.read(self.feat, input_nodes) if self.verify else None
        return PlannedMinibatch(input_nodes, seeds, blocks, planned, asked, truth)

    def fill(self, mb: PlannedMinibatch) -> torch.Tensor:
        """The second half, in plan order: the planned rows as the peers answer, assembled into the features."""
        mb.metrics.ts_pull_start = wall(time.perf_counter())
        x = self._step.fill(mb.planned, lambda _: self.peers.collect(mb.asked))
        if mb.truth is not None:
            self._check(x, mb.truth)
        mb.planned.metrics.ts_fetch_end = wall(time.perf_counter())
        return x

    def _record_pending(self) -> None:
        if self.recorder is not None and self._pending is not None:
            self.recorder.minibatch(self._pending)
            self._pending = None

    def _end_epoch(self) -> None:
        """Record the open epoch (and, after the first, the trace's meta)."""
        if self.recorder is None:
            return
        self._record_pending()
        self.recorder.decisions(self.decisions())
        epoch = self.recorder.end_epoch()
        if epoch is not None and not self._meta_written:
            self.recorder.trace_meta(self.trace_meta(epoch.minibatches, self.run))
            self._meta_written = True

    def trace_meta(self, minibatches_per_epoch: int, config) -> TraceMeta:
        """What a replay of this trainer's trace needs besides the trace."""
        return TraceMeta(rank=self.rank, partition=self.partition, part_bounds=self.bounds.tolist(),
                         capacity=self.capacity, halo_nodes=len(self.halo), feature_dim=int(self.feat.shape[1]),
                         row_bytes=self.row_bytes, minibatches_per_epoch=minibatches_per_epoch,
                         facts=self.controller.facts, config=config, warm_ids=self.warm_ids.tolist())

    def _verify(self, x: torch.Tensor, input_nodes: torch.Tensor) -> None:
        """Compare every served row with a direct DistTensor read (testing/auditing aid)."""
        self._check(x, self.read(self.feat, input_nodes))

    def _check(self, x: torch.Tensor, truth: torch.Tensor) -> None:
        if not torch.equal(x, truth):
            bad = int((x != truth).any(dim=1).sum())
            raise ServedRowMismatch(f"{bad} of {len(x)} served feature rows differ from the DistTensor")
        self.verified_rows += len(x)

    def summary(self) -> dict:
        """This trainer's controller and buffer facts for summary.json."""
        out = {"controller": self.controller.name, "capacity": self.capacity, "warm_rows": len(self.warm_ids),
               "verified_rows": self.verified_rows, "agent": self.controller.run_record(),
               # what the controller was told about the graph: `rudder replay-metrics` tells the agent the same
               "facts": facts.model_dump() if (facts := self.controller.facts) is not None else None,
               "keep_memory_bytes": self._step.engine.keep.memory_bytes()}
        if self.channel is not None:
            out.update(self.channel.record())
        return out

    def close(self) -> None:
        """Stop the controller (and its model, if any) and the reader thread; detach from a machine buffer; when
        recording, end the open epoch and write the controller's summary."""
        self._end_epoch()
        self.sampler.close()
        (self.channel or self.controller).close()
        self.read.close()
        for rows in self._peer_reads:  # this trainer's row servers go with the process (its peers may still read)
            rows.close()
        if self.segment is not None:
            self.segment.close()
        if self.recorder is not None:
            self.recorder.decisions(self.decisions())
            self.recorder.close(self.summary())
