"""What one machine's trainers could share: T buffers of C rows each against one buffer of T x C rows.

With ``--trainers-per-machine T`` every trainer keeps its own buffer of C rows, yet the T trainers of a
machine sample their remote inputs from the same partition's halo, so their buffers largely hold the
same hot rows. This replays each machine's T recorded streams both ways and counts the rows fetched:

- ``separate``: each trainer's own stream through its own buffer of C rows (as run), summed over the T;
- ``shared``: the T streams merged into one, through one buffer of T x C rows (the same memory), where a
  row fetched once serves every trainer of the machine;
- ``shared_c``: the merged stream through one buffer of only C rows (T times less memory; Belady only).

Each side is counted twice: with Belady's MIN (the fewest rows any buffer of that size could fetch) and
with the look-ahead keep policy replayed through the live buffer code (the ``fixed`` controller: re-rank
at every minibatch), each trainer seeing W minibatches ahead and the shared buffer T x W minibatches of
the merged stream (the union of the trainers' windows).

Merge order: epoch by epoch, minibatch i of trainer 0, of trainer 1, ..., of trainer T-1, then minibatch
i + 1 (trainers in rank order). That is what a shared buffer would see if the trainers advanced in step;
real trainers drift within a minibatch or so, and their recorded arrival times would make the count
depend on timing noise, so the merge is by position, which is deterministic. A trainer with fewer
minibatches in an epoch drops out of the end of that epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from rudder_agent.buffer.keep import MAX_WINDOW
from rudder_agent.errors import InputError
from rudder_agent.records.trace import read_trace_meta, recorded_ranks
from rudder_agent.replay.belady import belady
from rudder_agent.replay.recording import Recording, load_recording
from rudder_agent.replay.simulator import replay_counts

POLICIES = ("belady", "lookahead")
"""How each side is counted: the ideal buffer, and the look-ahead keep policy as it runs."""


@dataclass(frozen=True)
class SharedRecording(Recording):
    """A machine's trainers merged into one stream, replayed as one trainer whose buffer holds ``buffers`` x C rows."""

    buffers: int = 1

    def capacity(self, fraction: float | None = None) -> int:
        return self.buffers * super().capacity(fraction)


@dataclass(frozen=True)
class MachineShare:
    """Rows one machine's trainers fetch with separate buffers and with one shared buffer of the same memory."""

    machine: int
    ranks: list[int]
    capacity: int  # C: rows of each trainer's own buffer
    window: int  # W: each trainer's look-ahead window
    minibatches: int
    remote_inputs: int
    separate: dict[str, int]  # policy -> rows, T buffers of C
    shared: dict[str, int]  # policy -> rows, one buffer of T x C
    shared_c: dict[str, int]  # policy -> rows, one buffer of C

    @property
    def trainers(self) -> int:
        return len(self.ranks)

    def ratios(self) -> dict[str, float]:
        """Shared rows / separate rows per policy, and ``shared_c_<policy>`` for the buffer of C."""
        out = {p: self.shared[p] / self.separate[p] if self.separate[p] else 1.0 for p in self.shared}
        out.update({f"shared_c_{p}": self.shared_c[p] / self.separate[p] if self.separate[p] else 1.0
                    for p in self.shared_c})
        return out

    def to_json(self) -> dict:
        return {**asdict(self), "trainers": self.trainers, "ratios": self.ratios()}


def machine_ranks(run_dir: Path) -> dict[int, list[int]]:
    """Traced ranks by machine (machine m serves partition m, so a trainer's machine is its partition), in rank order."""
    out: dict[int, list[int]] = {}
    for rank in recorded_ranks(run_dir):
        out.setdefault(read_trace_meta(run_dir / f"trace-rank{rank}.json").partition, []).append(rank)
    return dict(sorted(out.items()))


def merge(recordings: Sequence[Recording]) -> SharedRecording:
    """The trainers' streams as one (see the module docstring for the order), with one buffer of T x C rows.

    Steps are renumbered so that each merged epoch is contiguous: the look-ahead window stops at an
    epoch's end, as it does live.
    """
    first = recordings[0].meta
    if any(r.meta.partition != first.partition or r.meta.part_bounds != first.part_bounds for r in recordings):
        raise InputError("only trainers of one machine (one partition) can share a buffer")
    steps = [np.asarray(r.steps, np.int64) for r in recordings]
    epoch = np.concatenate([s // r.meta.minibatches_per_epoch for s, r in zip(steps, recordings)])
    position = np.concatenate([s % r.meta.minibatches_per_epoch for s, r in zip(steps, recordings)])
    trainer = np.concatenate([np.full(s.shape[0], t, np.int64) for t, s in enumerate(steps)])
    which = np.concatenate([np.arange(s.shape[0], dtype=np.int64) for s in steps])  # index in its trainer's stream
    order = np.lexsort((trainer, position, epoch))
    per_epoch = sum(r.meta.minibatches_per_epoch for r in recordings)
    epochs = epoch[order]
    starts = np.searchsorted(epochs, epochs, side="left")  # first merged index of each minibatch's epoch
    merged_steps = epochs * per_epoch + (np.arange(order.shape[0]) - starts)
    return SharedRecording(run_dir=recordings[0].run_dir,
                           meta=first.model_copy(update={"minibatches_per_epoch": per_epoch}),
                           steps=merged_steps.tolist(),
                           inputs=[recordings[trainer[k]].inputs[which[k]] for k in order],
                           buffers=len(recordings))


def rows(recording: Recording, policy: str, window: int, fraction: float | None) -> int:
    """Rows ``recording`` fetches through its buffer (``recording.capacity``), by Belady or the look-ahead policy."""
    if policy == "belady":
        return belady(recording.remote_inputs(), recording.capacity(fraction)).comm_rows
    return replay_counts(recording, "fixed", fraction=fraction, policy="lookahead", lookahead=window).comm_rows


def machine_share(recordings: Sequence[Recording], machine: int, fraction: float | None = None,
                  window: int | None = None) -> MachineShare:
    """Separate, shared (T x C) and shared-C rows of one machine's trainers; C and W as recorded unless given."""
    T = len(recordings)
    W = window or recordings[0].meta.config.buffer.lookahead
    if T * W > MAX_WINDOW:
        raise InputError(f"the shared buffer's look-ahead would be T x W = {T} x {W} = {T * W} minibatches; "
                         f"the look-ahead policy sees at most {MAX_WINDOW}: pass a smaller --lookahead")
    shared = merge(recordings)
    return MachineShare(
        machine=machine, ranks=[r.rank for r in recordings], capacity=recordings[0].capacity(fraction), window=W,
        minibatches=len(shared.steps), remote_inputs=int(sum(len(ids) for ids in shared.remote_inputs())),
        separate={p: sum(rows(r, p, W, fraction) for r in recordings) for p in POLICIES},
        shared={p: rows(shared, p, T * W, fraction) for p in POLICIES},
        shared_c={"belady": rows(replace(shared, buffers=1), "belady", T * W, fraction)},
    )


def machine_view(run_dir: Path, fraction: float | None = None, window: int | None = None) -> list[MachineShare]:
    """Every machine of a traced run with several trainers per machine (a run with one per machine is refused)."""
    run_dir = Path(run_dir)
    groups = machine_ranks(run_dir)
    per_machine = max(len(ranks) for ranks in groups.values())
    if per_machine < 2:
        raise InputError(f"{run_dir} has one trainer per machine: nothing to share (shared = separate); record it "
                         "with `rudder train --trainers-per-machine T --trace` for T >= 2")
    return [machine_share([load_recording(run_dir, r) for r in ranks], machine, fraction, window)
            for machine, ranks in groups.items()]
