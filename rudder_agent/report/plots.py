"""PNG figures: trajectories with decisions marked (paper Fig. 20) and the buffer-size trade-off (Fig. 16).

Figures are built with ``matplotlib.figure.Figure`` (rendered by Agg on save), never pyplot,
so no global backend or figure registry is touched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.report.runs import Run

REPLACE, SKIP = "tab:red", "0.6"
GUARD_STYLE = ":"
"""Guard decisions (answered without the model) are dotted; model/rule/fallback decisions solid."""
OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": "small"}
"""Legends go right of the axes so they never hide data."""
BELOW = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.22), "fontsize": "small", "ncol": 3}
"""Long legends (many runs) go under the axes, in columns."""
BUFFER_STYLES = ("-", "--", "-.", ":")


def run_title(run: Run) -> str:
    """'name: controller variant, buffer %' (the name is left out when it says nothing more)."""
    what = f"{run.label}, buffer {100 * run.fraction:g}%" if run.controller != "none" else run.label
    return what if run.name == run.controller else f"{run.name}: {what}"


def rolling_sum(values: Sequence[float], k: int) -> np.ndarray:
    """Sum over the last k values (fewer at the start) at every position."""
    total = np.cumsum(np.concatenate([[0.0], np.asarray(values, dtype=float)]))
    lo = np.maximum(np.arange(1, len(values) + 1) - k, 0)
    return total[1:] - total[lo]


def rolling_hit_pct(stream: Sequence[MinibatchMetrics], k: int) -> np.ndarray:
    """Pooled %-Hits over the last k minibatches at every step (what an agent's window sees)."""
    hits = rolling_sum([m.hits for m in stream], k)
    remote = rolling_sum([m.remote_inputs for m in stream], k)
    return np.divide(100.0 * hits, remote, out=np.zeros(len(stream)), where=remote > 0)


def rolling_comm(stream: Sequence[MinibatchMetrics], k: int) -> np.ndarray:
    """Mean comm rows per minibatch over the last k minibatches."""
    return rolling_sum([m.comm_rows for m in stream], k) / np.minimum(np.arange(1, len(stream) + 1), k)


def mark_decisions(ax: Axes, stream: Sequence[MinibatchMetrics]) -> None:
    """Vertical lines at applied decisions: replace in red over skip in grey; guard decisions dotted."""
    for action, color, alpha in (("skip", SKIP, 0.35), ("replace", REPLACE, 0.45)):
        for guard in (True, False):
            steps = [m.step for m in stream if m.decision_applied == action and (m.decision_source == "guard") == guard]
            ax.vlines(steps, 0, 1, transform=ax.get_xaxis_transform(), colors=color, alpha=alpha, linewidth=0.8,
                      linestyles=GUARD_STYLE if guard else "solid")


def hit_axis_top(*series: Sequence[float]) -> float:
    """A %-Hits axis that fits the data (small buffers stay visible), never above 100."""
    peak = max((float(np.nanmax(s)) for s in series if len(s) and not np.all(np.isnan(s))), default=0.0)
    return min(100.0, max(5.0, 1.15 * peak))


def trajectory(run: Run, rank: int, k: int, path: Path) -> Path:
    """%-Hits and comm rows per minibatch of one rank, decisions as vertical lines."""
    stream = run.minibatches[rank]
    steps = [m.step for m in stream]
    per_mb = [100.0 * m.hits / m.remote_inputs if m.remote_inputs else np.nan for m in stream]
    fig = Figure(figsize=(11, 6.5), layout="constrained")
    hits_ax, comm_ax = fig.subplots(2, 1, sharex=True)
    for ax in (hits_ax, comm_ax):
        mark_decisions(ax, stream)
    hits_ax.plot(steps, per_mb, color="tab:blue", alpha=0.35, linewidth=0.8)
    hits_ax.plot(steps, rolling_hit_pct(stream, k), color="tab:blue", linewidth=2)
    comm_ax.plot(steps, [m.comm_rows for m in stream], color="tab:green", linewidth=1.2)
    comm_ax.plot(steps, [m.replace_rows for m in stream], color="tab:purple", linewidth=1, linestyle="--")
    hits_ax.set(ylabel="%-Hits", ylim=(0, hit_axis_top(per_mb)))
    comm_ax.set(ylabel="remote rows fetched", xlabel=f"minibatch (trainer rank {rank})", ylim=(0, None))
    n = {a: sum(m.decision_applied == a for m in stream) for a in ("replace", "skip")}
    guarded = sum(m.decision_source == "guard" for m in stream if m.decision_applied)
    hits_ax.legend(handles=[Line2D([], [], color="tab:blue", alpha=0.35, label="per minibatch"),
                            Line2D([], [], color="tab:blue", linewidth=2, label=f"last {k} minibatches"),
                            Line2D([], [], color=REPLACE, label=f"replace ({n['replace']})"),
                            Line2D([], [], color=SKIP, label=f"skip ({n['skip']})"),
                            Line2D([], [], color="black", linestyle=GUARD_STYLE, label=f"by the guard ({guarded})")],
                   **OUTSIDE)
    comm_ax.legend(handles=[Line2D([], [], color="tab:green", label="comm rows\n(misses + replacement)"),
                            Line2D([], [], color="tab:purple", linestyle="--", label="replacement rows")],
                   **OUTSIDE)
    fig.suptitle(f"{run_title(run)} - {run.config.dataset} x{run.config.parts}, trainer rank {rank}")
    fig.savefig(path, dpi=110)
    return path


def overlay(runs: Sequence[Run], rank: int, k: int, path: Path) -> Path:
    """Several runs' windowed %-Hits and comm rows on shared axes (same rank)."""
    fig = Figure(figsize=(13, 8), layout="constrained")
    hits_ax, comm_ax = fig.subplots(2, 1, sharex=True)
    colors = colormaps["tab10"].colors  # one colour per controller variant, one line style per buffer size
    labels = list(dict.fromkeys(run.label for run in runs))
    fractions = sorted({run.fraction for run in runs})
    curves = []
    for run in runs:
        stream = run.minibatches.get(rank, [])
        steps = [m.step for m in stream]
        style = {"color": colors[labels.index(run.label) % len(colors)], "linewidth": 1.5, "label": run_title(run),
                 "linestyle": BUFFER_STYLES[fractions.index(run.fraction) % len(BUFFER_STYLES)]}
        curves.append(rolling_hit_pct(stream, k))
        hits_ax.plot(steps, curves[-1], **style)
        comm_ax.plot(steps, rolling_comm(stream, k), **style)
    hits_ax.set(ylabel=f"%-Hits (last {k} minibatches)", ylim=(0, hit_axis_top(*curves)))
    comm_ax.set(ylabel=f"comm rows (mean of last {k})", xlabel=f"minibatch (trainer rank {rank})", ylim=(0, None))
    comm_ax.legend(**BELOW)
    fig.suptitle(f"Trajectories of {len(runs)} runs, trainer rank {rank}")
    fig.savefig(path, dpi=110)
    return path


def tradeoff(rows: Sequence[dict], path: Path) -> Path:
    """Comm rows relative to `none` (or per epoch) and %-Hits against buffer size, one line per controller."""
    buffered = [r for r in rows if r["buffer_pct"] > 0]
    relative = all(r.get("comm_ratio_none") is not None for r in buffered)
    lines: dict[str, list[dict]] = defaultdict(list)
    for r in buffered:  # synchronous runs of a controller are a variant of their own
        lines[r["controller"] + (" [sync]" if r["mode"] == "sync" else "")].append(r)
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    comm_ax, hits_ax = fig.subplots(1, 2)
    for label, points in sorted(lines.items()):
        points.sort(key=lambda r: r["buffer_pct"])
        x = [r["buffer_pct"] for r in points]
        comm_ax.plot(x, [r["comm_ratio_none" if relative else "comm_rows_per_epoch"] for r in points],
                     marker="o", label=label)
        hits_ax.plot(x, [r["hit_pct"] for r in points], marker="o", label=label)
    if relative:
        comm_ax.axhline(1.0, color="black", linestyle=":", linewidth=1, label="none (no buffer)")
    comm_ax.set(xlabel="buffer size (% of halo nodes)", ylim=(0, None),
                ylabel="comm rows per epoch / none's" if relative else "comm rows per epoch")
    hits_ax.set(xlabel="buffer size (% of halo nodes)", ylabel="%-Hits", ylim=(0, 100))
    comm_ax.set_xticks(sorted({r["buffer_pct"] for r in buffered}))
    hits_ax.set_xticks(comm_ax.get_xticks())
    comm_ax.legend(fontsize="small")
    first = rows[0]
    fig.suptitle(f"Buffer size trade-off: {first['dataset']} x{first['parts']}")
    fig.savefig(path, dpi=110)
    return path
