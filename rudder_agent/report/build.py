"""The whole report for a set of runs: rows, tables, figures and the notes that explain every n/a."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rudder_agent.decision import DEFAULT_HORIZON
from rudder_agent.errors import RudderError
from rudder_agent.passk import PassOptions
from rudder_agent.progress import progress
from rudder_agent.report import plots, tables
from rudder_agent.report.figures import Labels, rank_row, reference, run_row, with_ratio
from rudder_agent.report.runs import Run, load_runs
from rudder_agent.report.trace_analysis import bounds_row, oracle_labels, skip_reason


@dataclass
class Report:
    """What was computed and written."""

    runs: list[dict]
    ranks: list[dict]
    bounds: list[dict]
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def slug(name: str) -> str:
    """A run name usable in a file name."""
    return re.sub(r"[^\w.-]+", "_", name).strip("_")


def collect_labels(runs: Sequence[Run], horizon: int, compute: bool,
                   notes: list[str]) -> dict[str, dict[int, Labels]]:
    """Oracle labels per run and rank: recorded ones, or (``compute``) judged on a live run's trace."""
    out: dict[str, dict[int, Labels]] = {}
    for run in progress(runs, desc="oracle labels", unit="run", enabled=compute):
        out[run.name] = {}
        for rank in run.minibatches:
            try:
                labels = oracle_labels(run, rank, horizon) if compute or run.labels.get(rank) else None
            except RudderError as err:  # e.g. a killed run whose stream is shorter than its trace
                notes.append(f"{run.name} rank {rank}: oracle agreement n/a ({err})")
                continue
            if labels is not None:
                out[run.name][rank] = labels
        if run.controller != "none" and not out[run.name]:
            why = ("replay without oracle labels: replay it with `--labels H`" if run.replay is not None
                   else skip_reason(run) or "pass --bounds to judge its trace")
            notes.append(f"{run.name}: oracle agreement n/a ({why})")
    return out


def collect_bounds(runs: Sequence[Run], ranks: Sequence[dict], horizon: int, notes: list[str]) -> list[dict]:
    """Distance of every buffered run with a trace to the compulsory, Belady and oracle bounds."""
    by_key = {(r["run"], r["rank"]): r for r in ranks}
    out = []
    for run in progress(runs, desc="bounds", unit="run"):
        why = skip_reason(run)
        if why is not None:
            notes.append(f"{run.name}: bounds skipped ({why})")
            continue
        for rank in run.minibatches:
            try:
                out.append(bounds_row(run, rank, horizon, by_key[run.name, rank]))
            except RudderError as err:
                notes.append(f"{run.name} rank {rank}: bounds skipped ({err})")
    return out


def ratio_rows(runs: Sequence[Run], rows: Sequence[dict]) -> list[dict]:
    """Attach each row's ratio to the matching `none` run's row (same rank, or the run row)."""
    by_key = {(r["run"], r["rank"]): r for r in rows}
    named = {run.name: run for run in runs}
    out = []
    for row in rows:
        ref = reference(named[row["run"]], runs)
        out.append(with_ratio(row, by_key.get((ref.name, row["rank"])) if ref else None))
    return out


def render(report: Report, opts: PassOptions) -> str:
    """report.md: every table plus the notes and figure list."""
    pivot_rows, pivot_columns = tables.pass_pivot(report.runs)
    method = (f"Pass@1 windows: k = {opts.k} minibatches, unchanged when |change| < {opts.eps_hits:g} %-Hits "
              f"points or {opts.eps_comm:g}% of comm rows; intervals are 95% Wilson. Definitions: docs/reports.md.\n")
    parts = ["# Rudder report\n", method,
             "## Runs\n", tables.markdown(report.runs, tables.RUNS),
             "## Trainers\n", tables.markdown(report.ranks, tables.TRAINERS)]
    if pivot_rows:
        parts += ["## Pass@1 %-Hits by dataset\n", tables.markdown(pivot_rows, pivot_columns)]
    if report.bounds:
        parts += ["## Distance to bounds\n", tables.markdown(report.bounds, tables.BOUNDS)]
    if report.notes:
        parts += ["## Notes\n", "".join(f"- {n}\n" for n in report.notes)]
    figures = [f for f in report.files if f.suffix == ".png"]
    if figures:
        parts += ["## Figures\n", "".join(f"![{f.stem}]({f.name})\n" for f in figures)]
    return "\n".join(parts)


def write_figures(runs: Sequence[Run], rows: Sequence[dict], rank: int, k: int, out: Path,
                  notes: list[str]) -> list[Path]:
    """One trajectory per run, an overlay of all runs, one trade-off figure per dataset/partitioning."""
    files = []
    for run in runs:
        if rank in run.minibatches:
            files.append(plots.trajectory(run, rank, k, out / f"trajectory-{slug(run.name)}.png"))
        else:
            notes.append(f"{run.name}: no rank {rank} stream to plot")
    if len(runs) > 1:
        files.append(plots.overlay(runs, rank, k, out / "trajectories.png"))
    groups: dict[tuple, list[dict]] = {}
    for run, row in zip(runs, rows):
        groups.setdefault(run.group, []).append(row)
    for (dataset, parts, *_), group in groups.items():
        if any(r["buffer_pct"] > 0 for r in group):
            files.append(plots.tradeoff(group, out / f"tradeoff-{slug(dataset)}-x{parts}.png"))
    return files


def write_report(paths: Sequence[Path], out: Path, *, with_bounds: bool = False, rank: int = 0,
                 opts: PassOptions | None = None, horizon: int = DEFAULT_HORIZON, figures: bool = True) -> Report:
    """Load runs, compute every row, write report.md, runs/ranks/bounds CSVs and PNG figures into ``out``."""
    opts = opts or PassOptions()
    runs = load_runs(list(paths))
    notes: list[str] = []
    labels = collect_labels(runs, horizon, with_bounds, notes)
    run_rows = ratio_rows(runs, [run_row(r, labels[r.name], opts) for r in runs])
    rank_rows = ratio_rows(runs, [rank_row(r, k, labels[r.name].get(k), opts)
                                  for r in runs for k in sorted(r.minibatches)])
    unmatched = [r.name for r in runs if reference(r, runs) is None]
    if unmatched:
        notes.append(f"no `none` run with the same dataset, partitioning, batch size and fanouts for "
                     f"{', '.join(unmatched)}: 'vs none' is n/a")
    bound_rows = collect_bounds(runs, rank_rows, horizon, notes) if with_bounds else []
    report = Report(run_rows, rank_rows, bound_rows, notes)
    out.mkdir(parents=True, exist_ok=True)
    if figures:
        report.files += write_figures(runs, run_rows, rank, opts.k, out, notes)
    for name, rows in (("runs", run_rows), ("ranks", rank_rows), ("bounds", bound_rows)):
        if rows:
            tables.write_csv(out / f"{name}.csv", rows)
            report.files.append(out / f"{name}.csv")
    (out / "report.md").write_text(render(report, opts), encoding="utf-8")
    report.files.insert(0, out / "report.md")
    return report
