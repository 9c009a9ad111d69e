"""Run several controllers on one dataset in one session and print them side by side.

Every figure is also given as a ratio to `none` from the same session. Not a test: it
asserts nothing about times. Example:

    python benchmarks/compare_controllers.py --dataset ogbn-arxiv --epochs 3 \
        --controllers none,fixed,massivegnn --fractions 0.05,0.25 --out runs/compare
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def run(out: Path, args: list[str]) -> dict:
    """One `rudder train` run (reused if its summary exists)."""
    summary = out / "summary.json"
    if not summary.exists():
        cmd = [sys.executable, "-m", "rudder_agent.cli", "train", "--out", str(out), "--overwrite", *args]
        print("$ rudder " + " ".join(cmd[3:]), flush=True)
        subprocess.run(cmd, check=True)
    return json.loads(summary.read_text())


def table(rows: list[dict], base: dict) -> str:
    """Markdown table with ratios to the `none` run."""
    head = ("| controller | buffer | comm rows/epoch | ratio | %-Hits | epoch s | ratio | agent wait s "
            "| test acc |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for s in rows:
        lines.append(
            f"| {s['controller']} | {100 * s['buffer_fraction']:.0f}% | {s['comm_rows_per_epoch']:,.0f} "
            f"| {s['comm_rows_per_epoch'] / base['comm_rows_per_epoch']:.3f} | {s['hit_pct']:.1f} "
            f"| {s['epoch_time_s']:.2f} | {s['epoch_time_s'] / base['epoch_time_s']:.3f} "
            f"| {s['agent_wait_s']:.3f} | {s['test_acc']:.4f} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="ogbn-arxiv")
    p.add_argument("--parts", type=int, default=2)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--controllers", default="none,fixed,massivegnn", help="comma-separated")
    p.add_argument("--fractions", default="0.05,0.25", help="buffer fractions, comma-separated")
    p.add_argument("--out", type=Path, default=Path("runs/compare"))
    p.add_argument("--extra", default="", help="extra `rudder train` arguments, space-separated")
    a = p.parse_args()
    common = ["--dataset", a.dataset, "--parts", str(a.parts), "--epochs", str(a.epochs), *a.extra.split()]
    base = run(a.out / "none", common + ["--controller", "none"])
    rows = [base]
    for c in [c for c in a.controllers.split(",") if c != "none"]:
        for f in a.fractions.split(","):
            rows.append(run(a.out / f"{c}-{f}", common + ["--controller", c, "--buffer-fraction", f]))
    text = table(rows, base)
    (a.out / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
