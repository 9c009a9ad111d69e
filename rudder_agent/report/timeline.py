"""Where a trainer's minibatch time goes: a per-stage table and a timeline of a few minibatches.

Read from the stage timers of the minibatch records (:mod:`rudder_agent.stages` says what each includes). Two
threads of a trainer work at once: the *sampling* thread samples and fetches minibatch i+1.. while the *main*
thread trains on minibatch i. The table gives each stage's median seconds per minibatch and its share of the
epoch; for the sampling thread's stages also how much of their time ran while the main thread was training (the
rest of a fetch the main thread may have waited for: its ``wait for batch``).

``python benchmarks/timeline.py RUN_DIR [RUN_DIR ...] --rank 0 --epoch 1 --first 0 --count 6 --out X.png``
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from rudder_agent.config import read_run_config
from rudder_agent.errors import RudderError
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.records.run import read_rank

Span = tuple[float, float]
"""Start and end, wall-clock seconds."""

SAMPLING, PULL, MAIN = "sampling thread", "pull thread", "main thread"


@dataclass(frozen=True)
class Stage:
    """One stage of a minibatch on one thread: its name, its colour and where it lies in a record."""

    thread: str
    name: str
    color: str
    span: Callable[[MinibatchMetrics], Span]


TRAINING_ORDER = ("t_forward", "t_backward", "t_allreduce_wait", "t_optimizer")
"""The main thread's training stages: contiguous timers, laid end to end from the training's start."""


def _training_stage(name: str, color: str, i: int) -> Stage:
    def span(m: MinibatchMetrics) -> Span:
        start = m.ts_train_start + sum(getattr(m, f) for f in TRAINING_ORDER[:i])
        return start, start + getattr(m, TRAINING_ORDER[i])
    return Stage(MAIN, name, color, span)


STAGES: list[Stage] = [
    Stage(SAMPLING, "sample", "tab:blue", lambda m: (m.ts_sample_start, m.ts_sample_end)),
    # pulling from peers the sampling thread's part of the fetch ends with the plan; the pull thread does the rest
    Stage(SAMPLING, "fetch", "tab:orange", lambda m: (m.ts_fetch_start, m.ts_plan_end or m.ts_fetch_end)),
    Stage(PULL, "pull and assemble", "tab:cyan", lambda m: (m.ts_pull_start, m.ts_fetch_end) if m.ts_pull_start
          else (0.0, 0.0)),
    Stage(MAIN, "wait for batch", "tab:red", lambda m: (m.ts_train_start - m.t_batch_wait, m.ts_train_start)),
    *(_training_stage(name, color, i) for i, (name, color) in enumerate(
        (("forward", "tab:green"), ("backward", "tab:olive"), ("all-reduce wait", "tab:purple"),
         ("optimizer", "tab:brown")))),
]
"""Every stage drawn on the timeline, by thread, in the order they run."""
WAIT = next(s for s in STAGES if s.name == "wait for batch")

TRAINING: Callable[[MinibatchMetrics], Span] = lambda m: (m.ts_train_start, m.ts_train_end)  # noqa: E731


def pipelined(records: Iterable[MinibatchMetrics]) -> bool:
    """Whether a pull thread filled these minibatches (pulls from peers: ``ts_pull_start`` stamped)."""
    return any(m.ts_pull_start for m in records)


def timed(records: Iterable[MinibatchMetrics]) -> bool:
    """Whether the records carry the stage timers (written by a trainer that has them, all of them stamped)."""
    records = list(records)
    return bool(records) and all(m.ts_train_start > 0 and m.ts_fetch_end > 0 for m in records)


def epoch_records(stream: Sequence[MinibatchMetrics], epoch: int) -> list[MinibatchMetrics]:
    """One epoch's minibatch records, in step order."""
    return sorted((m for m in stream if m.epoch == epoch), key=lambda m: m.step)


def merged(spans: Iterable[Span]) -> list[Span]:
    """The union of the spans as disjoint spans, in order (empty ones dropped)."""
    out: list[list[float]] = []
    for a, b in sorted(s for s in spans if s[1] > s[0]):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def length(spans: Iterable[Span]) -> float:
    """Seconds covered by the spans (overlaps counted once)."""
    return sum(b - a for a, b in merged(spans))


def overlap(spans: Iterable[Span], others: Iterable[Span]) -> float:
    """Seconds covered by both the spans and the others."""
    xs, ys = merged(spans), merged(others)
    total, i, j = 0.0, 0, 0
    while i < len(xs) and j < len(ys):
        lo, hi = max(xs[i][0], ys[j][0]), min(xs[i][1], ys[j][1])
        total += max(0.0, hi - lo)
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return total


@dataclass(frozen=True)
class StageRow:
    """One line of the table."""

    thread: str
    stage: str
    median_s: float | None
    """Median seconds per minibatch (None: a remainder, not a per-minibatch stage)."""
    total_s: float
    share: float
    """Of the epoch's time, 0-1."""
    while_training: float | None = None
    """Sampling thread: the share of this stage's time that ran while the main thread trained, 0-1."""


@dataclass(frozen=True)
class StageTable:
    """Where one trainer's epoch went."""

    minibatches: int
    epoch_s: float
    """From the main thread's first wait to its last training's end."""
    rows: list[StageRow]

    @property
    def fetch_overlap(self) -> float | None:
        """The share of fetch time that ran while the main thread was training."""
        return next((r.while_training for r in self.rows if r.stage == "fetch"), None)

    @property
    def waited(self) -> float:
        """The share of the epoch the main thread waited for minibatches."""
        return next(r.share for r in self.rows if r.stage == "wait for batch")

    def as_dict(self) -> dict:
        return {"minibatches": self.minibatches, "epoch_s": self.epoch_s, "fetch_overlap": self.fetch_overlap,
                "waited": self.waited, "rows": [asdict(r) for r in self.rows]}


def epoch_span(records: Sequence[MinibatchMetrics]) -> Span:
    """From the main thread's first wait to its last training's end."""
    return WAIT.span(records[0])[0], records[-1].ts_train_end


def stage_table(records: Sequence[MinibatchMetrics]) -> StageTable:
    """The table of one trainer's epoch (its minibatch records, in step order, with the stage timers)."""
    if not timed(records):
        raise RudderError("these minibatch records carry no stage timers (ts_train_start, ts_fetch_end): "
                          "recorded by a trainer without them")
    start, end = epoch_span(records)
    epoch_s = max(end - start, 1e-12)
    training = [TRAINING(m) for m in records]
    rows = []

    def add(thread: str, stage: str, per_minibatch: list[float] | None, total: float,
            spans: list[Span] | None = None) -> None:
        while_training = overlap(spans, training) / length(spans) if spans and length(spans) > 0 else None
        rows.append(StageRow(thread, stage, statistics.median(per_minibatch) if per_minibatch else None, total,
                             total / epoch_s, while_training if thread in (SAMPLING, PULL) else None))

    pulled = pipelined(records)
    for stage in STAGES:
        if stage.thread == PULL and not pulled:
            continue
        spans = [stage.span(m) for m in records]
        durations = [b - a for a, b in spans]
        add(stage.thread, stage.name, durations, sum(durations), spans)
        if stage.name == "fetch":
            for name, field in (("  of which pull", "t_pull"), ("  of which controller wait", "t_wait")):
                if field == "t_pull" and pulled:
                    continue  # the pull thread's
                values = [getattr(m, field) for m in records]
                add(SAMPLING, name, values, sum(values))
            busy = length([s.span(m) for s in STAGES if s.thread == SAMPLING for m in records])
            add(SAMPLING, "idle (queue full or done)", None, max(0.0, epoch_s - busy))
        if stage.thread == PULL:
            values = [m.t_pull for m in records]
            add(PULL, "  of which waiting for rows", values, sum(values))
            add(PULL, "idle (waiting for a plan)", None, max(0.0, epoch_s - length(spans)))
    main = sum(r.total_s for r in rows if r.thread == MAIN)
    add(MAIN, "other (records, loop)", None, max(0.0, epoch_s - main))
    return StageTable(len(records), epoch_s, rows)


def format_table(table: StageTable, title: str = "") -> str:
    """The table as aligned text."""
    head = f"{title}: " if title else ""
    lines = [f"{head}{table.minibatches} minibatches, {table.epoch_s:.3f} s (first wait to last training end); "
             f"training waited {100 * table.waited:.1f}% of it; "
             + (f"{100 * table.fetch_overlap:.1f}% of fetch time ran while training"
                if table.fetch_overlap is not None else "no fetch time"),
             f"{'thread':<16} {'stage':<28} {'median s':>9} {'total s':>9} {'share':>7} {'while training':>15}"]
    for r in table.rows:
        median = f"{r.median_s:.4f}" if r.median_s is not None else "-"
        during = f"{100 * r.while_training:.1f}%" if r.while_training is not None else "-"
        lines.append(f"{r.thread:<16} {r.stage:<28} {median:>9} {r.total_s:>9.3f} {100 * r.share:>6.1f}% "
                     f"{during:>15}")
    return "\n".join(lines)


@dataclass(frozen=True)
class TimelineRun:
    """One run's records of one trainer, titled."""

    title: str
    records: list[MinibatchMetrics]
    """Every minibatch record of the trainer, in step order."""


def load_timeline_run(run_dir: Path, rank: int) -> TimelineRun:
    """Rank ``rank``'s records of ``run_dir``, titled by the directory (and its controller and link if known)."""
    run_dir = Path(run_dir)
    stream = read_rank(run_dir, rank)
    if not stream.minibatches:
        raise RudderError(f"{run_dir} holds no minibatch records of rank {rank}")
    title = run_dir.name
    if (run_dir / "config.json").exists():
        cfg = read_run_config(run_dir / "config.json")
        b = cfg.buffer
        what = b.controller.name if b.controller.name == "none" else \
            f"{b.controller.name}, {b.policy.name}, buffer {100 * b.fraction:g}%"
        link = f"netns@{cfg.link_rate}" if cfg.network == "netns" else cfg.network
        title = f"{title} ({what}, {link}, prefetch {cfg.prefetch})"
    return TimelineRun(title, stream.by_step())


def window(records: Sequence[MinibatchMetrics], first: int, count: int) -> Span:
    """From the main thread's wait for minibatch ``first`` (of the epoch's records) to the end of its training of
    minibatch ``first + count - 1``."""
    if not 0 <= first < len(records):
        raise RudderError(f"the epoch has {len(records)} minibatches: --first {first} is not one of them")
    shown = records[first:first + count]
    return WAIT.span(shown[0])[0], shown[-1].ts_train_end


ROWS = {SAMPLING: 1, MAIN: 0, PULL: 2}


def draw_timeline(runs: Sequence[TimelineRun], epoch: int, first: int, count: int, out: Path) -> Path:
    """One panel per run, stacked, with a row per thread: every stage that ran while the main thread waited for
    and trained on minibatches ``first``..``first + count - 1`` of ``epoch`` (indices within the epoch), on the
    same time scale from the start of that window. Bars are labelled with their minibatch's index."""
    panels = []
    for run in runs:
        records = epoch_records(run.records, epoch)
        if not timed(records):
            raise RudderError(f"{run.title}: epoch {epoch} has no minibatch records with stage timers")
        panels.append((run, records, window(records, first, count)))
    width = max(b - a for _, _, (a, b) in panels)
    fig = Figure(figsize=(12, 1.1 + 1.7 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (run, records, (t0, _)) in zip(axes, panels):
        index = {m.step: i for i, m in enumerate(records)}
        threads = [MAIN, SAMPLING, *([PULL] if pipelined(records) else [])]
        for stage in STAGES:
            if stage.thread not in threads:
                continue
            y = ROWS[stage.thread]
            bars = [(a - t0, b - a) for a, b in (stage.span(m) for m in records) if b > a]
            ax.broken_barh(bars, (y - 0.35, 0.7), facecolors=stage.color, edgecolor="white", linewidth=0.3)
            if stage.name in ("fetch", "forward", "pull and assemble"):
                for m in records:
                    a, b = stage.span(m)
                    if t0 <= a <= t0 + width:
                        ax.text(a - t0, y + 0.4, str(index[m.step]), fontsize=7, va="bottom", ha="left")
        table = stage_table(records)
        ax.set_title(f"{run.title}: epoch {epoch}, training waited {100 * table.waited:.0f}% of the epoch, "
                     f"{100 * (table.fetch_overlap or 0):.0f}% of fetch time overlapped training", fontsize=9,
                     loc="left")
        ax.set_xlim(0, width)
        ax.set_ylim(-0.6, len(threads) - 0.25)
        ax.set_yticks([ROWS[t] for t in threads], threads)
        ax.set_xlabel(f"seconds from the wait for minibatch {first} (rank {records[0].rank})", fontsize=8)
    fig.legend(handles=[Patch(color=s.color, label=s.name) for s in STAGES], loc="outside lower center",
               ncol=len(STAGES), fontsize="small")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return out
