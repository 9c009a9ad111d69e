"""Rows of every controller under every keep policy, by replay, with Belady's MIN in every cell.

For each recorded run (``rudder train --trace-only``) and buffer fraction, replays the chosen ranks
with each controller under each policy and pools the rows fetched; `none` fetches every remote input,
Belady's MIN is the bound for the same capacity. Counts are exact, so one replay per cell suffices.
The `llm` column is the what-if agent with the model never asked (``--llm-min-difference 100``): what
prompt v2 asks the model to do; closed-loop tables with the real model are in docs/agent.md.

    python benchmarks/controller_matrix.py traces/ogbn-arxiv-2p traces/com-dblp-4p --fractions 0.05,0.25 \\
        --policies decay,lfu,lookahead --controllers fixed,llm --json matrix.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from rudder_agent.log import configure_logging
from rudder_agent.records.trace import recorded_ranks
from rudder_agent.replay.belady import belady
from rudder_agent.replay.recording import load_recording
from rudder_agent.replay.simulator import replay_pooled

SKIP_ANSWER = {"decision": "skip", "hits": "unchanged", "comm": "unchanged", "reason": "never asked"}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+", help="recorded runs (directories with trace-rank*.rtf)")
    ap.add_argument("--fractions", default="0.05,0.25", help="buffer fractions, comma-separated")
    ap.add_argument("--policies", default="decay,lfu,lookahead", help="keep policies, comma-separated")
    ap.add_argument("--controllers", default="fixed,llm",
                    help="controllers, comma-separated (massivegnn needs a trace recorded with massivegnn: its "
                         "warm start's ids)")
    ap.add_argument("--ranks", default=None, help="ranks to replay, comma-separated (default: every traced rank)")
    ap.add_argument("--json", type=Path, default=None, help="also write every cell here")
    ap.add_argument("--from-json", type=Path, default=None, help="tabulate and plot cells written before (no replay)")
    ap.add_argument("--plot", type=Path, default=None, help="draw rows / none's rows per cell, Belady dashed (PNG)")
    return ap.parse_args()


def controller_overrides(controller: str, script: Path) -> dict:
    """The what-if agent for `llm` (the model is never asked); nothing for the others."""
    return {"model": f"scripted:{script}", "min_difference_pct": 100.0} if controller == "llm" else {}


def cell(run: Path, ranks: list[int], fraction: float, policy: str, controller: str, script: Path) -> dict:
    """Pooled rows and hits of one controller and policy over ``ranks`` of ``run``, beside `none` and Belady."""
    belady_rows = 0
    for rank in ranks:
        recording = load_recording(run, rank)
        belady_rows += belady(recording.remote_inputs(), recording.capacity(fraction)).comm_rows
    p = replay_pooled(run, ranks, controller, mode="async", fraction=fraction, policy=policy,
                      **controller_overrides(controller, script))
    return {"run": run.name, "ranks": ranks, "fraction": fraction, "policy": policy, "controller": controller,
            "comm_rows": p.comm_rows, "none_rows": p.remote_inputs, "belady_rows": belady_rows, "hits": p.hits,
            "vs_none": p.comm_rows / p.remote_inputs if p.remote_inputs else 0.0,
            "vs_belady": p.comm_rows / belady_rows if belady_rows else 0.0, "replay_s": round(p.seconds, 2)}


def table(cells: list[dict], controllers: list[str]) -> str:
    """Markdown: one row per run, fraction and policy; rows and ratio to `none` per controller, then Belady."""
    head = "| run | buffer | policy | " + " | ".join(controllers) + " | Belady | none |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    keyed = {(c["run"], c["fraction"], c["policy"], c["controller"]): c for c in cells}
    for run, fraction, policy in dict.fromkeys((c["run"], c["fraction"], c["policy"]) for c in cells):
        row = [keyed[(run, fraction, policy, k)] for k in controllers]
        first = row[0]
        lines.append(f"| {run} | {fraction:.0%} | {policy} | "
                     + " | ".join(f"{c['comm_rows']:,} ({c['vs_none']:.3f})" for c in row)
                     + f" | {first['belady_rows']:,} ({first['belady_rows'] / first['none_rows']:.3f})"
                     + f" | {first['none_rows']:,} |")
    return "\n".join(lines)


def plot(cells: list[dict], controllers: list[str], path: Path) -> None:
    """One panel per run and fraction: each policy's controllers as bars (rows / none's), Belady as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys((c["run"], c["fraction"]) for c in cells))
    cols = min(4, len(panels))
    fig, axes = plt.subplots((len(panels) + cols - 1) // cols, cols, figsize=(3.2 * cols, 3.0 * ((len(panels) + cols - 1) // cols)),
                             squeeze=False, sharey=True)
    for ax, (run, fraction) in zip(axes.flat, panels):
        mine = [c for c in cells if (c["run"], c["fraction"]) == (run, fraction)]
        policies = list(dict.fromkeys(c["policy"] for c in mine))
        width = 0.8 / len(controllers)
        for k, controller in enumerate(controllers):
            ys = [next(c["vs_none"] for c in mine if c["policy"] == p and c["controller"] == controller) for p in policies]
            ax.bar([i + k * width for i in range(len(policies))], ys, width, label=controller)
        ax.axhline(mine[0]["belady_rows"] / mine[0]["none_rows"], color="black", linestyle="--", linewidth=1,
                   label="Belady")
        ax.set_xticks([i + width * (len(controllers) - 1) / 2 for i in range(len(policies))], policies)
        ax.set_title(f"{run} {fraction:.0%}", fontsize=9)
        ax.set_ylim(0, 1.05)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    axes.flat[0].set_ylabel("rows / none's rows")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    args = parse_args()
    configure_logging("warning")
    fractions = [float(f) for f in args.fractions.split(",")]
    policies, controllers = args.policies.split(","), args.controllers.split(",")
    if args.from_json:
        cells = json.loads(args.from_json.read_text())
        controllers = list(dict.fromkeys(c["controller"] for c in cells))
        print(table(cells, controllers))
        if args.plot:
            plot(cells, controllers, args.plot)
        return
    cells = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "skip.jsonl"
        script.write_text(json.dumps(SKIP_ANSWER) + "\n")
        for run in args.runs:
            ranks = [int(r) for r in args.ranks.split(",")] if args.ranks else recorded_ranks(run)
            for fraction in fractions:
                for policy in policies:
                    for controller in controllers:
                        c = cell(run, ranks, fraction, policy, controller, script)
                        cells.append(c)
                        print(f"{run.name} {fraction:.0%} {policy} {controller}: {c['comm_rows']:,} rows "
                              f"({c['vs_none']:.3f}x none, {c['vs_belady']:.3f}x Belady) in {c['replay_s']} s",
                              flush=True)
    if args.json:
        args.json.write_text(json.dumps(cells, indent=1))
    print(table(cells, controllers))
    if args.plot:
        plot(cells, controllers, args.plot)


if __name__ == "__main__":
    main()
