"""One buffer per machine, shared by its trainers: a remote row is fetched once per machine, not once per trainer.

The T trainers of a machine sample from the same partition, so they draw their remote inputs from the same
halo; T private buffers hold T copies of the same hot rows. Here the rows live once, in files under the
machine's ``/dev/shm`` (``MachineSegment``), and every trainer runs the ordinary :class:`BufferEngine` on a
replica of the one machine-wide state (ids, scores, candidates, the keep policy's counts and look-ahead
marks), kept in step through that segment (``SharedEngine``).

The protocol, and why:

- **One lock per machine, held only for bookkeeping.** ``flock`` on the segment's lock file: the kernel
  releases it when its holder dies, so a killed trainer never leaves it held. It is never held over a network
  read, the model, or training: a trainer holds it to play its minibatch's round and plan on the state, to copy
  its hits out, and later to write the rows it fetched.
- **The state moves as one snapshot with a generation number.** A trainer that finds the generation moved
  since its own last write loads the snapshot, plays its minibatch with the unchanged engine code, applies the
  planned replacement's ids at once, and writes the snapshot back. Its large arrays (the keep policy's access
  log, the per-slot arrays) are not copied: they live in files of the segment that every replica maps, so the
  engine's kernels update them in place and the snapshot carries only their names and the scalars (a few KB).
  An array the engine reallocates (a growing table) moves into a new file at the next write. The machine's minibatches are thereby
  ordered (the generation is each one's place in that order, recorded as ``machine_op`` for replay), and each
  sees every earlier one's accesses and replacements: one buffer, one keep policy, T streams.
- **Rows arrive later than ids.** A replaced slot is *assigned* its new id at once but marked *not ready*
  until the trainer that planned it has read the row and written it (under the lock): ``assigned[s]`` and
  ``ready[s]`` per slot. A hit is served only from a ready slot, and copied out under the lock, so a later
  replacement can never overwrite a row while it is being read (no reader counts or double buffers needed: the
  copy is the read, it is short, and the lock orders it against every write).
- **A row being fetched is waited for, not fetched twice.** A minibatch that assigns slots holds a lock of its
  own (``flock`` on a file named after its generation, taken before the machine lock is released) until its rows
  are written; each slot keeps that generation as its owner. Before a minibatch is played, its inputs that sit
  in assigned but not-ready slots are waited for: it blocks on their owners' locks, outside the machine lock,
  and wakes the moment the rows land (or an owner dies: the kernel releases its lock), then looks again. It
  only ever waits for minibatches ordered before it, so waits cannot form a circle; and since it is played
  after its rows came, its own replacement cannot take a slot it still waits for. Only a row whose fetcher
  died is read here instead (``refetched_rows``): late, never wrong.

Every served row is a copy of a DistTensor read for exactly that id, made under the lock from a ready slot.
"""

from __future__ import annotations

import fcntl
import io
import os
import pickle
import time
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import replace as with_fields
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from rudder_agent.buffer.engine import BufferEngine, FetchPlan
from rudder_agent.buffer.idtable import EMPTY, as_ids
from rudder_agent.buffer.persistent import copy_rows

SHM_DIR = Path("/dev/shm")
WAIT_S: float | None = None
"""Longest wait for a row another trainer of the machine is fetching, before reading it here (None: until its
fetcher writes it or dies)."""
SHARE_BYTES = 1 << 16
"""State arrays this large or larger live in their own file of the segment instead of in the snapshot."""
_MAGIC = 0x5255444452425546  # "RUDDRBUF"
_HEADER = 8  # int64 words: magic, capacity, row bytes, generation, attached, array files made, spare
_GEN, _ATTACHED, _ARRAYS = 3, 4, 5


@dataclass(frozen=True, slots=True)
class ShareStats:
    """What sharing cost and saved in one minibatch (into its metrics)."""

    machine_op: int  # this minibatch's place in the machine's order (the generation it wrote)
    waited_rows: int  # hits on rows another trainer was fetching, waited for
    refetched_rows: int  # such rows read here after all (their fetcher died, or the wait ran out)
    t_share_lock: float  # seconds waiting to take the machine lock (since the previous minibatch's prepare)
    t_share_hold: float  # seconds holding it (likewise: its complete's row writes are counted here)
    t_share_wait: float  # seconds waiting for rows other trainers were fetching
    state_bytes: int  # the snapshot's size

    def fields(self) -> dict:
        return {f: getattr(self, f) for f in self.__slots__}


class _ArrayFiles:
    """The state's large arrays as files of the segment, mapped by every replica (see the module docstring)."""

    def __init__(self, segment: MachineSegment):
        self.segment = segment
        self.maps: dict[str, np.memmap] = {}  # name -> the one mapping of that file in this process
        self.names: dict[int, str] = {}  # id(mapping) -> name

    def ref(self, a: np.ndarray) -> tuple | None:
        """The persistent id of a large array: its file (written now if it is not one of ours)."""
        if a.nbytes < SHARE_BYTES:
            return None
        name = self.names.get(id(a))
        if name is None:  # new to the segment (first write, or reallocated by the engine): a file of its own
            name = f"a{self.segment.next_array()}"
            out = np.memmap(self.segment.array_path(name), dtype=a.dtype, mode="w+", shape=a.shape)
            out[...] = a
            out.flush()
        return ("array", name, a.dtype.str, a.shape)

    def load(self, pid: tuple) -> np.ndarray:
        _, name, dtype, shape = pid
        if name not in self.maps:
            mm = np.memmap(self.segment.array_path(name), dtype=np.dtype(dtype), mode="r+", shape=tuple(shape))
            self.maps[name] = mm
            self.names[id(mm)] = name
        return self.maps[name]

    def keep_only(self, used: set[str]) -> None:
        """Forget (and, lock held, delete) the files the latest snapshot no longer names."""
        for name in [n for n in self.maps if n not in used]:
            mm = self.maps.pop(name)
            self.names.pop(id(mm), None)
        self.segment.remove_arrays(keep=used)


class _Pickler(pickle.Pickler):
    def __init__(self, file, files: _ArrayFiles):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.files, self.used, self.created = files, set(), set()

    def persistent_id(self, obj):
        if isinstance(obj, np.ndarray):
            new = id(obj) not in self.files.names
            pid = self.files.ref(obj)
            if pid is not None:
                self.used.add(pid[1])
                if new:
                    self.created.add(pid[1])
            return pid
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, files: _ArrayFiles):
        super().__init__(file)
        self.files = files

    def persistent_load(self, pid):
        return self.files.load(pid)


class MachineSegment:
    """The machine's shared files: feature rows, per-slot assigned/ready ids, the state snapshot and the lock.

    ``open`` creates them (the first trainer) or attaches to them (the others); ``close`` detaches, and the last
    trainer removes them. A run launched by ``rudder train`` also removes its segments when it ends, so a
    trainer killed before ``close`` leaves nothing behind.
    """

    def __init__(self, base: Path, capacity: int, feature_dim: int, dtype: torch.dtype):
        self.base, self.capacity, self.feature_dim, self.dtype = base, capacity, feature_dim, dtype
        np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
        self.row_bytes = feature_dim * np_dtype.itemsize
        self._lock_fd = os.open(self._path("lock"), os.O_RDWR | os.O_CREAT, 0o600)
        self.waited_s = self.held_s = 0.0  # in all, waiting for the lock and holding it
        self._state_fd = -1
        with self.locked():
            fresh = not self._path("slots").exists()
            if fresh:
                _allocate(self._path("rows"), max(1, capacity * self.row_bytes))
                _allocate(self._path("slots"), 8 * (_HEADER + 3 * capacity))
            self._slots = np.memmap(self._path("slots"), dtype=np.int64, mode="r+")
            self.header = self._slots[:_HEADER]
            if fresh:
                self._slots[_HEADER:] = EMPTY
                self.header[:3] = (_MAGIC, capacity, self.row_bytes)
            elif tuple(self.header[:3]) != (_MAGIC, capacity, self.row_bytes):
                raise RuntimeError(f"{self.base}: a machine buffer of another shape is already there "
                                   f"(capacity {self.header[1]}, row bytes {self.header[2]}); another run's?")
            self.assigned = self._slots[_HEADER:_HEADER + capacity]
            self.ready = self._slots[_HEADER + capacity:_HEADER + 2 * capacity]
            self.owner = self._slots[_HEADER + 2 * capacity:]  # generation of the minibatch fetching a slot's row
            raw = np.memmap(self._path("rows"), dtype=np_dtype, mode="r+", shape=(capacity, feature_dim)) \
                if self.row_bytes else np.empty((capacity, 0), dtype=np_dtype)
            self.rows = torch.from_numpy(raw)
            self._state_fd = os.open(self._path("state"), os.O_RDWR | os.O_CREAT, 0o600)
            self.header[_ATTACHED] += 1
        self.created = fresh

    def _path(self, part: str) -> Path:
        return self.base.with_name(f"{self.base.name}.{part}")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the machine lock (timed into ``waited_s`` and ``held_s``)."""
        tic = time.perf_counter()
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        got = time.perf_counter()
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            self.waited_s += got - tic
            self.held_s += time.perf_counter() - got

    @property
    def generation(self) -> int:
        return int(self.header[_GEN])

    def write_state(self, blob: bytes) -> int:
        """Store the state snapshot (lock held); returns its new generation."""
        os.pwrite(self._state_fd, blob, 0)
        os.ftruncate(self._state_fd, len(blob))
        self.header[_GEN] += 1
        return self.generation

    def read_state(self) -> bytes:
        """The stored snapshot (lock held)."""
        size = os.fstat(self._state_fd).st_size
        return os.pread(self._state_fd, size, 0)

    def fetch_path(self, generation: int) -> Path:
        return self._path(f"fetch.{generation}")

    def start_fetch(self, generation: int) -> int:
        """Hold minibatch ``generation``'s fetch lock until :meth:`end_fetch` (lock held: before anyone can wait)."""
        fd = os.open(self.fetch_path(generation), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def end_fetch(self, generation: int, fd: int) -> None:
        """Its rows are written: wake whoever waits for them."""
        self.fetch_path(generation).unlink(missing_ok=True)
        os.close(fd)

    def wait_fetch(self, generation: int, deadline: float | None) -> None:
        """Until minibatch ``generation``'s rows are written or its trainer died (or ``deadline`` passes)."""
        try:
            fd = os.open(self.fetch_path(generation), os.O_RDONLY)
        except FileNotFoundError:
            return  # already written
        try:
            if deadline is None:
                fcntl.flock(fd, fcntl.LOCK_SH)
                return
            nap = 0.0005
            while time.perf_counter() < deadline:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    time.sleep(nap)
                    nap = min(2 * nap, 0.005)
        finally:
            os.close(fd)

    def next_array(self) -> int:
        """A fresh number for a state array's file (lock held)."""
        self.header[_ARRAYS] += 1
        return int(self.header[_ARRAYS])

    def array_path(self, name: str) -> Path:
        return self._path(f"state.{name}")

    def remove_arrays(self, keep: set[str]) -> None:
        """Delete the state-array files not in ``keep`` (lock held; mappings elsewhere stay valid until dropped)."""
        for p in self.base.parent.glob(f"{self.base.name}.state.a*"):
            if p.name.rsplit(".", 1)[-1] not in keep:
                p.unlink(missing_ok=True)

    def files(self) -> list[Path]:
        return [self._path(p) for p in ("lock", "slots", "rows", "state")] + \
            sorted(self.base.parent.glob(f"{self.base.name}.state.a*")) + \
            sorted(self.base.parent.glob(f"{self.base.name}.fetch.*"))

    def close(self) -> None:
        """Detach; the last trainer to detach removes the files."""
        if self._state_fd < 0:
            return
        with self.locked():
            self.header[_ATTACHED] -= 1
            last = self.header[_ATTACHED] <= 0
            if last:
                for p in self.files():
                    p.unlink(missing_ok=True)
        os.close(self._state_fd)
        os.close(self._lock_fd)
        self._state_fd = -1


def _allocate(path: Path, nbytes: int) -> None:
    with open(path, "wb") as f:
        f.truncate(nbytes)  # zero-filled, pages allocated on first touch


class SharedEngine:
    """:class:`BufferEngine`'s ``prepare``/``complete`` for one trainer, on its machine's shared buffer.

    ``engine`` holds this trainer's replica of the machine's state: an ids-only buffer of the machine's capacity
    and a keep policy built with ``lanes`` = the trainers sharing it, ``engine.lane`` this trainer's lane.
    """

    def __init__(self, engine: BufferEngine, segment: MachineSegment, wait_s: float | None = WAIT_S,
                 warm: Callable[[], tuple[np.ndarray, torch.Tensor | None]] | None = None):
        """``warm``: the warm-start ids and their rows (read only by the trainer that sets the machine's state up)."""
        if engine.buffer is None or engine.buffer.track_features or engine.buffer.capacity != segment.capacity:
            raise ValueError("a shared engine plays an ids-only replica of the machine's capacity")
        self.engine, self.segment, self.wait_s = engine, segment, wait_s
        self._generation = -1
        self._state_bytes = 0
        self._lock_mark = (segment.waited_s, segment.held_s)
        self._files = _ArrayFiles(segment)
        self._fetching: tuple[int, int] | None = None  # (generation, fd) of this trainer's rows in flight
        self.warm_ids = np.empty(0, dtype=np.int64)  # what this trainer loaded (the machine's warm start, or none)
        with segment.locked():
            if segment.generation == 0:  # the first trainer here sets the machine's state up
                if warm is not None:
                    self._warm_load(*warm())
                self._save()
            else:
                self._load()

    def _warm_load(self, ids: np.ndarray, rows: torch.Tensor | None) -> None:
        """Load the warm start into the empty machine buffer: ids into the replica, rows into their slots."""
        self.engine.buffer.warm_load(ids)
        taken = np.flatnonzero(self.engine.buffer.lookup(ids) >= 0)  # rows[i] is the row of ids[i]
        self.warm_ids = ids[taken]
        slots = self.engine.buffer.lookup(self.warm_ids)
        if self.segment.row_bytes and taken.shape[0]:
            copy_rows(self.segment.rows, slots, rows.contiguous(), taken)
        self.segment.assigned[slots] = self.warm_ids
        self.segment.ready[slots] = self.warm_ids

    @property
    def buffer(self):
        """The replica of the machine's ids and scores (what controllers read)."""
        return self.engine.buffer

    @property
    def keep(self):
        return self.engine.keep

    @property
    def keep_cpu_s(self) -> float:
        return self.engine.keep_cpu_s

    def _load(self) -> None:
        blob = self.segment.read_state()
        self._adopt(blob)
        self._generation, self._state_bytes = self.segment.generation, len(blob)

    def _adopt(self, blob: bytes) -> None:
        """Make the replica the snapshot's state: scalars copied, large arrays the segment's mapped files."""
        buffer, keep = _Unpickler(io.BytesIO(blob), self._files).load()
        self.engine.buffer.__dict__.update(buffer.__dict__)  # in place: controllers hold these objects
        self.engine.keep.__dict__.update(keep.__dict__)

    def _save(self) -> None:
        out = io.BytesIO()
        pickler = _Pickler(out, self._files)
        pickler.dump((self.engine.buffer, self.engine.keep))
        blob = out.getvalue()
        if pickler.created or pickler.used != set(self._files.maps):  # arrays came or went: files to delete
            self._files.keep_only(pickler.used)
        self._generation, self._state_bytes = self.segment.write_state(blob), len(blob)
        if pickler.created:  # arrays the engine made since the last write: the replica maps their files instead
            self._adopt(blob)

    def prepare(self, input_nodes, replace: bool, upcoming: Sequence[np.ndarray] = ()) -> FetchPlan:
        """Wait for the rows of this minibatch that other trainers are fetching, then play it on the machine's
        state and copy out its hits.

        The wait comes first, outside the lock: played later, a minibatch would be free to evict, by its own
        replacement, a slot whose row it still waits for. Waiting only decides WHEN it is played (its place in
        the machine's order), never how, so a replay in that order plans the same.
        """
        seg = self.segment
        ids = as_ids(input_nodes.numpy() if isinstance(input_nodes, torch.Tensor) else input_nodes)
        deadline = None if self.wait_s is None else time.perf_counter() + self.wait_s
        waited_for: set[int] = set()
        waited_rows, t_wait = 0, 0.0
        while True:
            with seg.locked():
                if seg.generation != self._generation:
                    self._load()
                slots = self.engine.buffer.lookup(ids)
                held = np.flatnonzero(slots >= 0)
                pending = held[seg.ready[slots[held]] != ids[held]]
                owners = set(np.unique(seg.owner[slots[pending]]).tolist()) - waited_for
                if not owners:  # nothing (more) to wait for: play it now
                    plan, staged, lost = self._play(ids, replace, upcoming)
                    break
            # outside the lock, only for minibatches ordered before this one: no circle of waits
            waited_rows = max(waited_rows, int(pending.shape[0]))
            tic = time.perf_counter()
            for generation in sorted(owners):
                seg.wait_fetch(generation, deadline)
            t_wait += time.perf_counter() - tic
            waited_for |= owners
        if lost.shape[0]:  # their fetchers died (or the wait ran out): read them here
            plan = self._refetch(plan, lost)
        waited_s, held_s = seg.waited_s - self._lock_mark[0], seg.held_s - self._lock_mark[1]
        self._lock_mark = (seg.waited_s, seg.held_s)
        share = ShareStats(self._generation, waited_rows, int(lost.shape[0]), waited_s, held_s, t_wait,
                           self._state_bytes)
        return with_fields(plan, staged=staged, share=share)

    def _play(self, ids: np.ndarray, replace: bool, upcoming: Sequence[np.ndarray]):
        """The minibatch's round and plan on the machine's state (lock held): the plan with its ready hits only,
        their rows, and the input positions of hits whose row never came."""
        seg = self.segment
        plan = self.engine.prepare(ids, replace=replace, upcoming=upcoming)
        ready = seg.ready[plan.hit_slots] == plan.input_nodes[plan.hit_pos]
        staged = self._copy_out(plan.hit_slots[ready])
        rep = plan.replacement
        if rep is not None:
            self.engine.complete(plan, None)  # the replica takes the new ids now; rows come in complete()
            if len(rep):
                generation = seg.generation + 1  # the one _save() writes
                self._fetching = (generation, seg.start_fetch(generation))
                seg.assigned[rep.evict_slots] = rep.insert_ids
                seg.ready[rep.evict_slots] = EMPTY
                seg.owner[rep.evict_slots] = generation
        self._save()
        lost = plan.hit_pos[~ready]
        return with_fields(plan, hit_pos=plan.hit_pos[ready], hit_slots=plan.hit_slots[ready]), staged, lost

    def _copy_out(self, slots: np.ndarray) -> torch.Tensor | None:
        """The rows of ready slots, copied while the lock is held (None for an ids-only segment)."""
        if not self.segment.row_bytes:
            return None
        out = torch.empty((slots.shape[0], self.segment.feature_dim), dtype=self.segment.dtype)
        copy_rows(out, np.arange(slots.shape[0]), self.segment.rows, slots)
        return out

    @staticmethod
    def _refetch(plan: FetchPlan, lost_pos: np.ndarray) -> FetchPlan:
        """Read these inputs after all: their own ids in the pull instead of a local stand-in."""
        pull = plan.pull_ids.copy()
        pull[lost_pos] = plan.input_nodes[lost_pos]
        c, n = plan.counts, lost_pos.shape[0]
        return with_fields(plan, pull_ids=pull, counts=with_fields(c, hits=c.hits - n, misses=c.misses + n,
                                                            comm_rows=c.comm_rows + n))

    def complete(self, plan: FetchPlan, pulled_rows: torch.Tensor | None) -> torch.Tensor | None:
        """The input features (hits from the copies made in ``prepare``), then the fetched rows into their slots."""
        if pulled_rows is None:
            self._end_fetch()
            return None
        if pulled_rows.shape[0] != plan.pull_ids.shape[0]:
            raise ValueError(f"pulled {pulled_rows.shape[0]} rows for {plan.pull_ids.shape[0]} pull ids")
        pulled_rows = pulled_rows.contiguous()
        out = pulled_rows[: plan.input_nodes.shape[0]]
        if plan.hit_pos.shape[0] and plan.staged is not None:
            copy_rows(out, plan.hit_pos, plan.staged, np.arange(plan.hit_pos.shape[0]))
        rep = plan.replacement
        if rep is not None and len(rep):
            seg = self.segment
            with seg.locked():
                mine = (seg.assigned[rep.evict_slots] == rep.insert_ids) & (seg.ready[rep.evict_slots] == EMPTY)
                slots = rep.evict_slots[mine]
                if slots.shape[0] and seg.row_bytes:
                    copy_rows(seg.rows, slots, pulled_rows, plan.insert_src[mine])
                seg.ready[slots] = rep.insert_ids[mine]
        self._end_fetch()
        return out

    def _end_fetch(self) -> None:
        if self._fetching is not None:
            self.segment.end_fetch(*self._fetching)
            self._fetching = None

    def close(self) -> None:
        self._end_fetch()
        self.segment.close()

