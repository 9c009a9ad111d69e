"""Controllers side by side over datasets, partition counts and networks, in one session.

Each configuration runs `none` and every other controller at every buffer size, `--repeats`
times; tables give medians and the min–max spread of epoch time (after the first epoch) and
every figure as a ratio to `none` of the same configuration and session. Comm rows are
exact and identical across repeats. Not a test: nothing is asserted. Example:

    python benchmarks/side_by_side.py --datasets ogbn-arxiv --parts 2 --networks loopback,netns \
        --controllers none,fixed,massivegnn,llm --fractions 0.05,0.25 --repeats 3 --out runs/bench
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

from tqdm import tqdm

from rudder_agent.cli import train_config
from rudder_agent.compare import run_or_reuse, variants
from rudder_agent.dist.netns import availability


def row(label: dict, reps: list[dict], base: list[dict]) -> dict:
    """Medians and spreads of one variant, with ratios to `none`'s medians."""
    med = lambda runs, k: statistics.median(r[k] for r in runs)  # noqa: E731
    times = [r["epoch_time_s"] for r in reps]
    total_s = sum(sum(r["epoch_times_s"]) for r in reps)
    s = reps[0]
    return {
        **label,
        "controller": s["controller"],
        "buffer": s["buffer_fraction"],
        "comm_rows_per_epoch": s["comm_rows_per_epoch"],
        "comm_ratio": s["comm_rows_per_epoch"] / base[0]["comm_rows_per_epoch"],
        "comm_bytes_per_epoch": s["comm_bytes"] / max(s["epochs"], 1),
        "hit_pct": s["hit_pct"],
        "epoch_s_median": statistics.median(times),
        "epoch_s_min": min(times),
        "epoch_s_max": max(times),
        "epoch_ratio": statistics.median(times) / med(base, "epoch_time_s"),
        "agent_wait_share": sum(r["agent_wait_s"] for r in reps) / (total_s * s["parts"]) if total_s else 0.0,
        "test_acc": med(reps, "test_acc"),
        "test_acc_none": med(base, "test_acc"),
        "decisions": s.get("decisions"),
        "repeats": len(reps),
    }


def markdown(rows: list[dict]) -> str:
    """One table for all configurations."""
    head = ("| dataset | parts | network | controller | buffer | comm rows/epoch | vs none | %-Hits "
            "| epoch s median [min–max] | vs none | agent wait % | test acc (none) |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['parts']} | {r['network']} | {r['controller']} | {100 * r['buffer']:.0f}% "
            f"| {r['comm_rows_per_epoch']:,.0f} | {r['comm_ratio']:.3f} | {r['hit_pct']:.1f} "
            f"| {r['epoch_s_median']:.2f} [{r['epoch_s_min']:.2f}–{r['epoch_s_max']:.2f}] | {r['epoch_ratio']:.3f} "
            f"| {100 * r['agent_wait_share']:.2f} | {r['test_acc']:.4f} ({r['test_acc_none']:.4f}) |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="ogbn-arxiv,com-dblp")
    p.add_argument("--parts", default="2,4")
    p.add_argument("--networks", default="loopback,netns", help="loopback and/or netns (root only)")
    p.add_argument("--link-rate", default="1gbit")
    p.add_argument("--controllers", default="none,fixed,massivegnn,llm")
    p.add_argument("--fractions", default="0.05,0.25")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("runs/bench"))
    p.add_argument("--overwrite", action="store_true", help="re-run finished variants")
    a = p.parse_args()
    networks = a.networks.split(",")
    if "netns" in networks and (why := availability()):
        print(f"skipping the emulated network: {why}", file=sys.stderr)
        networks.remove("netns")
    configs = [(d, int(k), n) for d in a.datasets.split(",") for k in a.parts.split(",") for n in networks]
    rows = []
    for dataset, parts, network in tqdm(configs, desc="configurations", unit="config"):
        label = {"dataset": dataset, "parts": parts, "network": network if network == "loopback" else
                 f"netns@{a.link_rate}"}
        base_cfg = train_config(dataset, parts, a.epochs, a.out / f"{dataset}-{parts}p-{network}", "metis", 1000,
                                "10,25", 256, 0.003, 0, {}, network=network, link_rate=a.link_rate)
        results = {}
        for rep in range(a.repeats):
            for cfg in variants(base_cfg, a.controllers.split(","), [float(f) for f in a.fractions.split(",")]):
                cfg = cfg.model_copy(update={"out_dir": cfg.out_dir / f"rep{rep}"})
                results.setdefault(cfg.out_dir.parent.name, []).append(run_or_reuse(cfg, a.overwrite))
        base = results["none"]
        rows += [row(label, reps, base) for reps in results.values()]
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "results.md").write_text(markdown(rows) + "\n")
        with (a.out / "results.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=[k for k in rows[0] if k != "decisions"], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    print(markdown(rows))


if __name__ == "__main__":
    main()
