"""Replay a machine-shared run in its recorded order: the machine's comm rows, exactly, and Belady's MIN for them.

With ``--buffer-scope machine`` the T trainers of a machine play their minibatches on one machine-wide buffer
state, one at a time under the machine lock (buffer/shared.py); each minibatch records its place in that order
as ``machine_op``. Playing the machine's traced minibatches in that order through one ids-only replica of the
machine's capacity, one keep policy built with ``lanes=T`` and one :class:`BufferEngine` per trainer (lane
``rank % T``), each with its own look-ahead window and the replace/skip it applied live, plans exactly the rows
the live engines planned. What the live run read besides are the ``refetched_rows`` (a row another trainer was
fetching that never arrived), so per machine::

    live comm rows == replayed rows + refetched rows

A ``no`` there means the recording is not the whole story (a run killed between a minibatch's play and its
record) or the replay differs from the live code. Belady's MIN over the same merged sequence of remote inputs,
with the machine's capacity, is the fewest rows any buffer of that size could have fetched in that order.

The keep policy, its look-ahead and the scoring are the recorded run's; the replay reads no rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rudder_agent.buffer.engine import BufferEngine
from rudder_agent.buffer.persistent import PersistentBuffer
from rudder_agent.buffer.policy import ScoringPolicy
from rudder_agent.errors import InputError
from rudder_agent.replay.belady import belady
from rudder_agent.replay.machine_share import machine_ranks
from rudder_agent.replay.recording import Recording, load_recording

NOT_SHARED = ("its trainers had buffers of their own (no minibatch recorded a machine_op): `rudder bounds RUN "
              "--machine` tells what sharing could save; record a shared run with `rudder train "
              "--trainers-per-machine T --buffer-scope machine --trace` (T >= 2)")


@dataclass(frozen=True)
class MachineReplay:
    """One machine of a machine-shared run, replayed in its recorded order, beside what it did live."""

    machine: int
    ranks: list[int]
    capacity: int  # rows of the machine's one buffer (T x C)
    window: int  # W: each trainer's look-ahead window
    lanes: int  # T: trainers sharing the buffer
    minibatches: int
    remote_inputs: int
    live_rows: int  # recorded comm_rows, summed over the machine's minibatches (refetched rows included)
    refetched_rows: int
    waited_rows: int
    replayed_rows: int  # rows the engines planned, played in machine_op order
    belady_rows: int  # Belady's MIN over the same merged remote inputs, with the machine's capacity

    @property
    def exact(self) -> bool:
        """Whether the replay accounts for every live row: live == replayed + refetched."""
        return self.live_rows == self.replayed_rows + self.refetched_rows

    @property
    def live_over_belady(self) -> float:
        return self.live_rows / self.belady_rows if self.belady_rows else 1.0

    def to_json(self) -> dict:
        return {**asdict(self), "exact": self.exact, "live_over_belady": self.live_over_belady}


def is_shared(recording: Recording) -> bool:
    """Whether this rank's minibatches were played on a machine-shared buffer (they carry a ``machine_op``)."""
    return any(m.machine_op >= 0 for m in recording.minibatches.values())


def played_order(recordings: list[Recording]) -> list[tuple[Recording, int]]:
    """The machine's recorded minibatches as (recording, index into its trace), in machine_op order.

    Only traced minibatches with a metrics record take part (a killed trainer's last ones may lack either).
    """
    played = [(m.machine_op, r.rank, i) for r in recordings for i, s in enumerate(r.steps)
              if (m := r.minibatches.get(s)) is not None]
    if not any(op >= 0 for op, _, _ in played):
        raise InputError(f"{recordings[0].run_dir} machine {recordings[0].meta.partition}: {NOT_SHARED}")
    ops = [op for op, _, _ in played]
    if min(ops) < 0 or len(set(ops)) != len(ops):
        raise InputError(f"{recordings[0].run_dir}: the machine's minibatches do not have one machine_op each "
                         "(some -1 or repeated): its ranks are not one machine-shared run's")
    by_rank = {r.rank: r for r in recordings}
    return [(by_rank[rank], i) for _, rank, i in sorted(played)]


def replay_machine(run_dir: Path, machine: int) -> MachineReplay:
    """Replay machine ``machine`` of a machine-shared run in its recorded order (see the module docstring)."""
    run_dir = Path(run_dir)
    groups = machine_ranks(run_dir)
    if machine not in groups:
        raise InputError(f"{run_dir} has no traced trainer on machine {machine} "
                         f"(machines: {', '.join(map(str, groups))})")
    recordings = [load_recording(run_dir, rank) for rank in groups[machine]]
    meta = recordings[0].meta
    lanes = meta.config.trainers_per_machine
    if len(recordings) != lanes:
        raise InputError(f"{run_dir} machine {machine}: {len(recordings)} traced trainers of {lanes}; a shared "
                         "buffer's order needs every trainer of the machine")
    order = played_order(recordings)
    b = meta.config.buffer
    replica = PersistentBuffer(meta.capacity, 0, ScoringPolicy.from_settings(b.scoring))
    warm = np.concatenate([np.asarray(r.meta.warm_ids, dtype=np.int64) for r in recordings])
    if warm.shape[0]:  # the machine's warm start, loaded by the trainer that set its state up
        replica.warm_load(warm)
    keep = b.policy.build(b.lookahead, lanes)
    bounds = np.asarray(meta.part_bounds)
    engines = {r.rank: BufferEngine(replica, bounds, meta.partition, keep, lane=r.rank % lanes) for r in recordings}
    remote = {r.rank: r.remote_inputs() for r in recordings}
    replayed = 0
    for rec, i in order:
        engine = engines[rec.rank]
        live = rec.minibatches[rec.steps[i]]
        plan = engine.prepare(rec.inputs[i], replace=live.decision_applied == "replace",
                              upcoming=rec.window(i, b.lookahead))
        engine.complete(plan, None)
        replayed += plan.counts.comm_rows
    played = [rec.minibatches[rec.steps[i]] for rec, i in order]
    bound = belady([remote[rec.rank][i] for rec, i in order], meta.capacity)
    return MachineReplay(
        machine=machine, ranks=[r.rank for r in recordings], capacity=meta.capacity, window=b.lookahead, lanes=lanes,
        minibatches=len(order), remote_inputs=bound.remote_inputs, live_rows=sum(m.comm_rows for m in played),
        refetched_rows=sum(m.refetched_rows for m in played), waited_rows=sum(m.waited_rows for m in played),
        replayed_rows=replayed,
        belady_rows=bound.comm_rows,
    )


def replay_machines(run_dir: Path, machine: int | None = None) -> list[MachineReplay]:
    """One machine, or every traced machine of the run in order."""
    machines = [machine] if machine is not None else list(machine_ranks(Path(run_dir)))
    return [replay_machine(run_dir, m) for m in machines]


def recorded_scope(run_dir: Path) -> str:
    """``machine`` when the run's trainers shared one buffer per machine, else ``trainer``.

    The recorded config says which scope was asked for; the metrics (a ``machine_op`` per minibatch) whether it
    was in force (one trainer per machine, or a controller without a buffer, shares nothing).
    """
    run_dir = Path(run_dir)
    first = load_recording(run_dir, next(iter(machine_ranks(run_dir).values()))[0])
    cfg = first.meta.config
    return "machine" if cfg.shares_buffer and is_shared(first) else "trainer"
