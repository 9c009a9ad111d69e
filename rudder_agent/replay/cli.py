"""`rudder replay` and `rudder bounds`: command functions that rudder_agent/cli.py registers."""

from __future__ import annotations

import functools
import json
import shutil
import time
from pathlib import Path
from typing import Optional

import typer

from rudder_agent.config import BufferConfig
from rudder_agent.decision import DEFAULT_HORIZON
from rudder_agent.errors import InputError, RudderError
from rudder_agent.options import option_group, recorded, setting_options, setting_values
from rudder_agent.records.run_summary import RunSummary
from rudder_agent.settings.agent import CLOSED_LOOP_ONLY, AgentConfig

RUN_DIR = typer.Argument(..., exists=True, file_okay=False, help="a run recorded with `rudder train --trace`")
SETTINGS = setting_options(recorded=True, skip=("controller",))
"""replay: every buffer setting (unset: the recorded run's); --controller is the replay's own (recorded, oracle too)."""
MODEL = setting_options(recorded=True, only=AgentConfig, skip=CLOSED_LOOP_ONLY)
"""replay-metrics: the agent's settings an open-loop replay uses (it plays no what-if and never rests)."""


@option_group("options", SETTINGS)
def replay_command(
    ctx: typer.Context,
    trace: Path = RUN_DIR,
    controller: str = typer.Option("recorded", help="recorded (the run's own decisions), oracle, none, fixed, "
                                   "massivegnn, llm or classifier"),
    rank: Optional[int] = typer.Option(None, help="replay one rank (default: every traced rank)"),
    machine: Optional[str] = typer.Option(None, "--machine", metavar="K|all",
                                          help="a machine-shared run (--buffer-scope machine): replay machine K's "
                                          "trainers, or every machine with `all`, on one buffer in the recorded "
                                          "order, with the recorded decisions and settings; prints live, refetched, "
                                          "replayed and Belady rows per machine and writes nothing"),
    latency: Optional[int] = typer.Option(None, help="async: answers arrive this many minibatches after the "
                                          "request (default: measured in the recorded run)"),
    out: Path = typer.Option(Path("runs/replay"), help="output directory (metrics-rank*.jsonl, summary.json; "
                             "not with --machine, which writes nothing)"),
    horizon: int = typer.Option(DEFAULT_HORIZON, help="oracle: look-ahead in minibatches"),
    labels: Optional[int] = typer.Option(None, help="also write oracle labels (kind=oracle) with this horizon"),
    overwrite: bool = typer.Option(False, help="replace an existing output directory"),
    options: dict = None,
) -> None:
    """Replay a recorded access stream through the buffer with any controller (no DistDGL); writes summary.json.

    With --machine: a machine-shared run's trainers on their machine's one buffer, in the recorded order.
    live rows == replayed + refetched when the replay accounts for every row (see docs/machines.md).
    """
    from rudder_agent import preflight
    from rudder_agent.records.trace import recorded_ranks

    if machine is not None:
        from rudder_agent.options import given

        others = [p.opts[0] for p in ctx.command.params if p.name not in ("trace", "machine") and given(ctx, p.name)]
        if others:
            raise InputError(f"--machine replays the recorded run as it ran and writes nothing: drop "
                             f"{', '.join(others)}")
        replay_by_machine(trace, machine)
        return
    values = setting_values(options, recorded=True)
    mode, fraction = values.pop("mode", None), values.pop("fraction", None)  # the replay's clock and size
    overrides = preflight.replay(trace, controller, rank=rank, mode=mode, values=values, horizon=horizon)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise RudderError(f"{out} is not empty; pass --overwrite or choose another --out")
        shutil.rmtree(out)
    from rudder_agent.replay.simulator import replay_run

    summary: RunSummary | None = None
    for r in [rank] if rank is not None else recorded_ranks(trace):
        tic = time.perf_counter()
        summary = replay_run(trace, r, controller, mode=mode, latency_minibatches=latency, out_dir=out,
                             fraction=fraction, label_horizon=labels, **overrides)
        typer.echo(f"rank {r}: replayed in {time.perf_counter() - tic:.2f} s", err=True)
    s, d = summary, summary.decisions
    typer.echo(
        f"{s.dataset} replay [{s.controller}, {s.replay.mode}]: {s.minibatches} minibatches\n"
        f"  %-Hits: {s.hit_pct:.2f}  comm rows: {s.comm_rows} (misses {s.miss_rows}, "
        f"replace {s.replace_rows}, warm {s.warm_rows})\n"
        f"  decisions: replace {d['replace']} skip {d['skip']}  requests {s.requests} "
        f"dropped {s.dropped_requests}  replacement interval {s.replacement_interval}\n"
        f"  written to {out / 'summary.json'}"
    )


def replay_by_machine(trace: Path, machine: str) -> list[dict]:
    """`rudder replay --machine K|all`: one line per machine; returns the figures."""
    from rudder_agent.replay.machine_order import replay_machines

    if machine != "all" and not machine.isdigit():
        raise InputError(f"--machine takes a machine number or `all`, not {machine!r}")
    results = replay_machines(trace, None if machine == "all" else int(machine))
    for m in results:
        typer.echo(f"machine {m.machine} (trainers {','.join(map(str, m.ranks))}, {m.capacity} rows, "
                   f"{m.minibatches} minibatches): live {m.live_rows} rows, refetched {m.refetched_rows}, replayed "
                   f"{m.replayed_rows}, live == replayed + refetched: {'yes' if m.exact else 'no'}, "
                   f"Belady {m.belady_rows}, live/Belady {m.live_over_belady:.3f}")
    return [m.to_json() for m in results]


def bounds_command(
    trace: Path = RUN_DIR,
    rank: Optional[int] = typer.Option(None, help="one rank (default: every traced rank)"),
    fraction: Optional[float] = recorded(BufferConfig, "fraction", "--fraction", "--buffer-fraction"),
    horizon: int = typer.Option(DEFAULT_HORIZON, help="oracle look-ahead in minibatches"),
    machine: bool = typer.Option(False, "--machine", help="per machine instead of per rank. A run whose trainers "
                                 "had their own buffers: rows of its T trainers' separate buffers of C rows against "
                                 "one buffer of T x C rows shared by them, by Belady and the look-ahead policy (a run "
                                 "with --trainers-per-machine 1 is refused). A machine-shared run (--buffer-scope "
                                 "machine): its live rows against Belady for its one buffer in the recorded order. "
                                 "The scope is read from the run and printed"),
    lookahead: Optional[int] = typer.Option(None, min=1, help="--machine, a run with buffers per trainer: each "
                                            "trainer's look-ahead window W (default: the recorded run's); the shared "
                                            "buffer sees T x W, at most 32"),
    out: Optional[Path] = typer.Option(None, help="also write the figures to this JSON file"),
) -> None:
    """Compulsory rows, Belady's MIN and the decision oracle for a recorded run, beside what it did.

    With --machine: what each machine's trainers could save by sharing one buffer (see docs/machines.md).
    On a machine-shared run: Belady for each machine's one buffer in the recorded order.
    """
    if machine:
        if rank is not None:
            raise InputError("--machine covers every trainer of each machine: drop --rank")
        results = bounds_by_machine(trace, fraction, lookahead)
    else:
        from rudder_agent.replay.bounds import bounds
        from rudder_agent.records.trace import recorded_ranks

        results = [bounds(trace, r, fraction=fraction, horizon=horizon, progress=True)
                   for r in ([rank] if rank is not None else recorded_ranks(trace))]
        for b in results:
            typer.echo(f"rank {b['rank']}: capacity {b['capacity']}, {b['minibatches']} minibatches, "
                       f"{b['remote_inputs']} remote inputs")
            for name in ("recorded", "oracle", "belady", "compulsory"):
                if name in b:
                    typer.echo(f"  {name:10s} %-Hits {b[name]['hit_pct']:6.2f}  comm rows {b[name]['comm_rows']}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))


def bounds_by_machine(trace: Path, fraction: float | None, lookahead: int | None) -> list[dict]:
    """`rudder bounds --machine`: one table per machine, for the scope the run had; returns what --out writes."""
    from rudder_agent.replay.machine_order import recorded_scope, replay_machines
    from rudder_agent.replay.machine_share import machine_view

    if recorded_scope(trace) == "machine":
        if fraction is not None or lookahead is not None:
            raise InputError("a machine-shared run is bounded at its recorded capacity and order: drop --fraction "
                             "and --lookahead")
        typer.echo("scope: machine (the run's trainers shared one buffer per machine): Belady for that buffer, "
                   "in the recorded order")
        replays = replay_machines(trace)
        for m in replays:
            typer.echo(f"machine {m.machine}: trainers {', '.join(map(str, m.ranks))} (T={m.lanes}), one buffer of "
                       f"{m.capacity} rows, {m.minibatches} minibatches, {m.remote_inputs} remote inputs\n"
                       f"  live {m.live_rows} rows (refetched {m.refetched_rows})  Belady {m.belady_rows} rows  "
                       f"live/Belady {m.live_over_belady:.3f}")
        return [{"scope": "machine", **m.to_json()} for m in replays]
    shares = machine_view(trace, fraction, lookahead)
    typer.echo("scope: trainer (the run's trainers had buffers of their own): what one shared buffer could save")
    for m in shares:
        r = m.ratios()
        typer.echo(f"machine {m.machine}: trainers {', '.join(map(str, m.ranks))} (T={m.trainers}), C={m.capacity} rows "
                   f"each, W={m.window}, {m.minibatches} minibatches, {m.remote_inputs} remote inputs")
        typer.echo(f"  {'policy':10s} {'separate':>15s} {'shared T*C':>13s} {'ratio':>6s} "
                   f"{'shared C':>9s} {'ratio':>6s}")
        for p in m.separate:
            c = f"{m.shared_c[p]:9d} {r[f'shared_c_{p}']:6.3f}" if p in m.shared_c else f"{'-':>9s} {'-':>6s}"
            typer.echo(f"  {p:10s} {m.separate[p]:15d} {m.shared[p]:13d} {r[p]:6.3f} {c}")
    return [{"scope": "trainer", **m.to_json()} for m in shares]


@option_group("agent", MODEL)
def replay_metrics_command(
    run: Path = typer.Argument(..., help="a run or replay directory: any run, with or without --trace"),
    rank: Optional[int] = typer.Option(None, help="replay one rank (default: every rank with a metric stream)"),
    limit: Optional[int] = typer.Option(None, min=1, help="replay only the first N windows of each rank"),
    labels: Optional[Path] = typer.Option(None, help="a `rudder replay RUN --labels H` output whose kind=oracle "
                                          "records label this run's trajectory (default: the run's own records, "
                                          "else computed from its trace if it has one)"),
    horizon: int = typer.Option(DEFAULT_HORIZON, min=1, help="oracle look-ahead when labels are computed from a trace"),
    oracle: bool = typer.Option(True, "--oracle/--no-oracle", help="compute oracle labels from the run's trace "
                                "when it has one and no labels are recorded"),
    guard: bool = typer.Option(True, "--guard/--no-guard", help="--no-guard: ask the model in every window, also "
                               "those the guard's rules settle (a stream the guard answered says nothing of the model)"),
    out: Path = typer.Option(Path("runs/open-loop"), help="output directory (windows.jsonl, summary.json)"),
    overwrite: bool = typer.Option(False, help="replace an existing output directory"),
    agent: dict = None,
) -> None:
    """Open loop: feed a run's recorded metric windows through the decision graph with any model, prompt or CoT.

    No trace needed; the decisions do not change the stream. Measures decisions, validity, latency and agreement.
    Several variants over the same windows, side by side: --prompt-version v1,v2,v2+cot (+cot/+nocot per variant).
    """
    from rudder_agent.errors import InputError
    from rudder_agent.replay.open_loop import check_run_dir, format_side_by_side, format_table, prompt_variants

    ranks = check_run_dir(run)
    if rank is not None and rank not in ranks:
        raise InputError(f"{run} has no metric stream for rank {rank} (ranks present: {', '.join(map(str, ranks))})")
    if labels is not None and not labels.is_dir():
        raise InputError(f"--labels {labels} is not a directory")
    values = setting_values(agent, recorded=True)
    variants = prompt_variants(values.pop("prompt_version", None), values.get("cot"))  # every one checked first
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise RudderError(f"{out} is not empty; pass --overwrite or choose another --out")
        shutil.rmtree(out)
    replay_one = functools.partial(_open_loop_into, run, rank=rank, limit=limit, labels=labels, horizon=horizon,
                                   oracle=oracle, guard=guard)
    if len(variants) == 1:
        ((_, overrides),) = variants
        summary = replay_one(out, {**values, **overrides})
        a = summary["agent"]
        typer.echo(f"open-loop replay of {run} [{a['model']}, prompt {a['prompt_version']}"
                   f"{', cot' if a['cot'] else ''}{', no guard' if not a['guard'] else ''}]: the decisions do not "
                   "change the stream\n")
        typer.echo(format_table(summary))
        typer.echo(f"\nwritten to {out / 'windows.jsonl'} and {out / 'summary.json'}")
        return
    summaries = [(label, replay_one(out / label, {**values, **overrides})) for label, overrides in variants]
    table = format_side_by_side(summaries)
    (out / "comparison.md").write_text(table + "\n")
    typer.echo(f"open-loop replay of {run}, {len(variants)} variants over the same windows: the decisions do not "
               "change the stream\n")
    typer.echo(table)
    typer.echo(f"\nwritten to {out}/<variant>/ (windows.jsonl, summary.json) and {out / 'comparison.md'}")


def _open_loop_into(run: Path, out: Path, overrides: dict, *, rank: int | None, limit: int | None,
                    labels: Path | None, horizon: int, oracle: bool, guard: bool) -> dict:
    """One open-loop replay of ``run`` with agent settings ``overrides``: windows.jsonl and summary.json in ``out``
    (nothing written when it cannot start); returns the summary."""
    from rudder_agent.replay.open_loop import open_loop

    notes: list[str] = []
    files: list = []  # windows.jsonl, opened at the first row: a run that cannot start leaves no output behind

    def write(row: dict) -> None:
        if not files:
            out.mkdir(parents=True, exist_ok=True)
            files.append((out / "windows.jsonl").open("w", encoding="utf-8"))
        files[0].write(json.dumps(row) + "\n")
        files[0].flush()

    try:
        _, summary = open_loop(run, [rank] if rank is not None else None, limit=limit, labels_dir=labels,
                               horizon=horizon, compute_labels=oracle, notes=notes, on_row=write, guard=guard,
                               **overrides)
    finally:
        for fh in files:
            fh.close()
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    return summary
