"""Controllers side by side over datasets, partition counts and networks, in one session.

Each configuration runs `none` and every other controller at every buffer size, `--repeats`
times. Repeat r of every configuration runs before repeat r+1 of any, so an interrupted session
still covers the whole matrix; finished runs are reused when the command is run again
(`--collect-only` only aggregates them). Tables give medians and the min–max spread of epoch
time (after the first epoch) and every figure as a ratio to `none` of the same configuration and
session. Comm rows are exact and identical across repeats and networks (seeded sampling).

Bounds come from one trace-only recording per dataset and partition count (same stream, same
epochs): Belady's MIN, the H=8 decision oracle and the compulsory rows at each buffer size.
Not a test: nothing is asserted. Example:

    python benchmarks/side_by_side.py --datasets ogbn-arxiv --parts 2 --networks loopback,netns \
        --controllers none,fixed@decay,fixed,massivegnn,paper,llm,classifier --classifier-path xgb.rcls \
        --fractions 0.05,0.25 --repeats 2 --out runs/bench

``--controllers`` takes what `rudder compare` takes: a controller, NAME@POLICY, or ``paper``.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

from rudder_agent.cli import train_config
from rudder_agent.cluster.netns import availability
from rudder_agent.compare import parse_variants, run_or_reuse, variants
from rudder_agent.config import BufferConfig, TrainSettings
from rudder_agent.progress import progress
from rudder_agent.records.run_summary import RunSummary, read_summary


def pooled_bounds(trace_dir: Path, fraction: float, epochs: int) -> dict:
    """Belady, oracle and compulsory figures for one buffer size, pooled over the traced ranks."""
    from rudder_agent.records.trace import recorded_ranks
    from rudder_agent.replay.bounds import bounds

    cache = trace_dir / f"bounds-{fraction:g}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    per_rank = [bounds(trace_dir, r, fraction=fraction, progress=True) for r in recorded_ranks(trace_dir)]
    remote = sum(b["remote_inputs"] for b in per_rank)
    out = {name: {"hit_pct": 100 * sum(b[name]["hits"] for b in per_rank) / remote,
                  "comm_rows_per_epoch": sum(b[name]["comm_rows"] for b in per_rank) / epochs}
           for name in ("belady", "oracle", "compulsory")}
    cache.write_text(json.dumps(out, indent=2))
    return out


def stage_ms(run_dir: Path) -> dict:
    """Median per-minibatch sample, fetch and train milliseconds after the first epoch, over all trainers."""
    from rudder_agent.records.stream import read_jsonl

    rows = [m for f in sorted(run_dir.glob("metrics-rank*.jsonl")) for m in read_jsonl(f, kind="minibatch")
            if m["epoch"] > 0]
    return {f"{k}_ms": 1000 * statistics.median(m[f"t_{k}"] for m in rows) if rows else None
            for k in ("sample", "fetch", "train")}


def row(label: dict, reps: list[dict], base: list[dict], bound: dict | None) -> dict:
    """Medians and spreads of one variant, with ratios to `none`'s medians and distances to the bounds."""
    med = lambda runs, k: statistics.median(r[k] for r in runs)  # noqa: E731
    times = [r["epoch_time_s"] for r in reps]
    total_s = sum(sum(r["epoch_times_s"]) for r in reps)
    s = reps[0]
    rows_per_epoch = s["comm_rows_per_epoch"]
    return {
        **label,
        "controller": s["controller"],
        "variant": s["variant"],
        "policy": s.get("policy"),
        "buffer": s["buffer_fraction"],
        "comm_rows_per_epoch": rows_per_epoch,
        "comm_ratio": rows_per_epoch / base[0]["comm_rows_per_epoch"],
        "comm_mb_per_epoch": s["comm_bytes"] / max(s["epochs"], 1) / 1e6,
        "none_rows_per_epoch": base[0]["comm_rows_per_epoch"],
        "oracle_rows_per_epoch": bound["oracle"]["comm_rows_per_epoch"] if bound else None,
        "row_bytes": s["comm_bytes"] / s["comm_rows"] if s["comm_rows"] else None,
        "hit_pct": s["hit_pct"],
        "belady_hit_pct": bound["belady"]["hit_pct"] if bound else None,
        "of_belady": s["hit_pct"] / bound["belady"]["hit_pct"] if bound else None,
        "vs_oracle_rows": rows_per_epoch / bound["oracle"]["comm_rows_per_epoch"] if bound else None,
        "epoch_s_median": statistics.median(times),
        "epoch_s_min": min(times),
        "epoch_s_max": max(times),
        "epoch_ratio": statistics.median(times) / med(base, "epoch_time_s"),
        "agent_wait_share": sum(r["agent_wait_s"] for r in reps) / (total_s * s["parts"]) if total_s else 0.0,
        "test_acc": med(reps, "test_acc"),
        "test_acc_none": med(base, "test_acc"),
        "repeats": len(reps),
        "comm_runs": [r["comm_rows_per_epoch"] for r in reps],
        "hit_runs": [r["hit_pct"] for r in reps],
        **stage_ms(s["dir"]),
    }


def bound_rows(label: dict, fraction: float, bound: dict, base: list[dict]) -> list[dict]:
    """The oracle and Belady as table rows (no timing: they are replays)."""
    none_rows = base[0]["comm_rows_per_epoch"]
    return [{**label, "controller": name, "variant": name, "buffer": fraction, "comm_rows_per_epoch": b["comm_rows_per_epoch"],
             "comm_ratio": b["comm_rows_per_epoch"] / none_rows, "none_rows_per_epoch": none_rows,
             "hit_pct": b["hit_pct"], "repeats": 0}
            for name, b in (("oracle (replay)", bound["oracle"]), ("belady (replay)", bound["belady"]))]


def cell(value, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def comm_table(rows: list[dict]) -> str:
    """Communication per dataset and partition count, pooled over networks and repeats.

    Rule controllers fetch the same rows in every run (seeded sampling); asynchronous ones (llm,
    classifier) depend on when answers land, so their median and range over all runs are shown.
    """
    head = ("| dataset | parts | variant | policy | buffer | comm rows/epoch [min–max] | vs none | MB/epoch | %-Hits "
            "| of Belady | vs oracle rows | runs |")
    lines = [head, "|" + "---|" * 12]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["parts"], r["variant"], r["buffer"]), []).append(r)
    for (dataset, parts, variant, buffer), rs in groups.items():
        comm = [c for r in rs for c in r.get("comm_runs", [r["comm_rows_per_epoch"]])]
        hits = [h for r in rs for h in r.get("hit_runs", [r["hit_pct"]])]
        med, lo, hi = statistics.median(comm), min(comm), max(comm)
        spread = f" [{lo:,.0f}–{hi:,.0f}]" if hi > lo else ""
        r0 = rs[0]
        per = lambda k: med / r0[k] if r0.get(k) else None  # noqa: E731
        mb = med * r0["row_bytes"] / 1e6 if r0.get("row_bytes") else None
        of_belady = statistics.median(hits) / r0["belady_hit_pct"] if r0.get("belady_hit_pct") else None
        lines.append(
            f"| {dataset} | {parts} | {variant} | {r0.get('policy') or '–'} | {100 * buffer:.0f}% | {med:,.0f}{spread} "
            f"| {per('none_rows_per_epoch'):.3f} | {cell(mb, '.0f')} | {statistics.median(hits):.1f} "
            f"| {cell(of_belady, '.2f')} | {cell(per('oracle_rows_per_epoch'), '.3f')} "
            f"| {len(comm) if 'comm_runs' in r0 else '–'} |")
    return "\n".join(lines)


def time_table(rows: list[dict]) -> str:
    """Epoch time, trainer wait on the controller and accuracy per configuration."""
    head = ("| dataset | parts | network | variant | policy | buffer | epoch s median [min–max] | vs none | fetch ms "
            "| train ms | agent wait % | test acc (none) | n |")
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        if "epoch_s_median" not in r:
            continue
        lines.append(
            f"| {r['dataset']} | {r['parts']} | {r['network']} | {r['variant']} | {r.get('policy') or '–'} "
            f"| {100 * r['buffer']:.0f}% "
            f"| {r['epoch_s_median']:.2f} [{r['epoch_s_min']:.2f}–{r['epoch_s_max']:.2f}] | {r['epoch_ratio']:.3f} "
            f"| {cell(r.get('fetch_ms'), '.0f')} | {cell(r.get('train_ms'), '.0f')} | {100 * r['agent_wait_share']:.2f} "
            f"| {r['test_acc']:.4f} ({r['test_acc_none']:.4f}) | {r['repeats']} |")
    return "\n".join(lines)


def markdown(rows: list[dict]) -> str:
    return f"## Communication\n\n{comm_table(rows)}\n\n## Time\n\n{time_table(rows)}\n"


def plot(rows: list[dict], path: Path) -> None:
    """Comm rows and epoch time relative to `none`, one group of bars per configuration; Belady's rows as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timed = [r for r in rows if "epoch_s_median" in r and r["controller"] != "none"]
    configs = sorted({(r["dataset"], r["parts"], r["network"]) for r in timed})
    variants_ = sorted({(r["variant"], r["buffer"]) for r in timed}, key=lambda v: (v[1], v[0]))
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 1.1 * len(configs) + 3), 7), sharex=True)
    width = 0.8 / max(len(variants_), 1)
    for k, (ctl, f) in enumerate(variants_):
        for ax, key in zip(axes, ("comm_ratio", "epoch_ratio")):
            xs, ys = [], []
            for i, c in enumerate(configs):
                hit = [r for r in timed if (r["dataset"], r["parts"], r["network"]) == c
                       and (r["variant"], r["buffer"]) == (ctl, f)]
                if hit:
                    xs.append(i + (k - (len(variants_) - 1) / 2) * width)
                    ys.append(hit[0][key])
            ax.bar(xs, ys, width, label=f"{ctl} {100 * f:.0f}%", hatch="//" if f < 0.1 else None,
                   color=plt.cm.tab10(k % 10))
    belady = [r for r in rows if r["controller"] == "belady (replay)"]
    for i, c in enumerate(configs):  # Belady's MIN at each buffer size: the floor of the rows a buffer can reach
        for b in belady:
            if (b["dataset"], b["parts"]) == c[:2]:
                axes[0].hlines(b["comm_ratio"], i - 0.45, i + 0.45, colors="black", linestyles="dashed", lw=1,
                               label="Belady (replay)" if i == 0 and b is belady[0] else None)
    for ax, title in zip(axes, ("comm rows per epoch / none", "epoch time (median after epoch 1) / none")):
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_ylabel(title)
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_xticks(range(len(configs)), [f"{d}\n{p} parts\n{n}" for d, p, n in configs], fontsize=8)
    axes[0].legend(ncol=4, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.25))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="ogbn-arxiv,com-dblp")
    p.add_argument("--parts", default="2,4")
    p.add_argument("--networks", default="loopback,netns", help="loopback and/or netns (root only)")
    p.add_argument("--link-rate", default="1gbit")
    p.add_argument("--controllers", default="none,fixed,massivegnn,llm,classifier")
    p.add_argument("--classifier-path", type=Path, help="trained .rcls artefact for the classifier controller")
    p.add_argument("--fractions", default="0.05,0.25")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--prefetch", type=int, default=1, help="minibatches prepared ahead of training (rudder train --prefetch)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--no-bounds", action="store_true", help="skip the trace-only recordings and the bounds")
    p.add_argument("--collect-only", action="store_true", help="aggregate finished runs; launch nothing")
    p.add_argument("--out", type=Path, default=Path("runs/bench"))
    p.add_argument("--overwrite", action="store_true", help="re-run finished variants")
    a = p.parse_args()
    controllers = parse_variants(a.controllers)
    fractions = [float(f) for f in a.fractions.split(",")]
    if any(v.controller == "classifier" for v in controllers) and not (a.classifier_path and a.classifier_path.is_file()):
        p.error("the classifier controller needs --classifier-path to a trained .rcls artefact")
    networks = a.networks.split(",")
    if "netns" in networks and (why := availability()):
        print(f"skipping the emulated network: {why}", file=sys.stderr)
        networks.remove("netns")
    given = {"classifier_path": a.classifier_path.resolve() if a.classifier_path else None}  # every variant's base
    buffer = BufferConfig.from_values(given)
    pairs = [(d, int(k)) for d in a.datasets.split(",") for k in a.parts.split(",")]
    configs = [(d, k, n) for d, k in pairs for n in networks]

    def base_config(dataset: str, parts: int, network: str, **extra):
        out = a.out / f"{dataset}-{parts}p-{network}"
        return train_config(TrainSettings(dataset=dataset, parts=parts, epochs=a.epochs, out_dir=out, buffer=buffer,
                                          network=network, link_rate=a.link_rate, prefetch=a.prefetch, **extra))

    def finished_or_run(cfg) -> RunSummary | None:
        return read_summary(cfg.out_dir) if a.collect_only else run_or_reuse(cfg, a.overwrite)

    bounds: dict[tuple, dict] = {}
    if not a.no_bounds:
        for dataset, parts in progress(pairs, desc="bounds", unit="trace", leave=True):
            cfg = base_config(dataset, parts, "loopback", trace=True, trace_only=True)
            cfg = cfg.model_copy(update={"out_dir": a.out / f"{dataset}-{parts}p-trace",
                                         "buffer": cfg.buffer.with_values({"controller": "fixed",
                                                                          "fraction": max(fractions)})})
            if finished_or_run(cfg) is not None:
                for f in fractions:
                    bounds[(dataset, parts, f)] = pooled_bounds(cfg.out_dir, f, a.epochs)

    results: dict[tuple, list[dict]] = {}
    jobs = [(rep, c) for rep in range(a.repeats) for c in configs]
    for rep, (dataset, parts, network) in progress(jobs, desc="configurations x repeats", unit="config", leave=True):
        for v, cfg in variants(base_config(dataset, parts, network), given, controllers, fractions):
            run_dir = cfg.out_dir / f"rep{rep}"
            summary = finished_or_run(cfg.model_copy(update={"out_dir": run_dir}))
            if summary is not None:
                results.setdefault((dataset, parts, network, cfg.out_dir.name), []).append(
                    {**summary.model_dump(), "dir": run_dir, "variant": v.label})

    rows = []
    for dataset, parts, network in configs:
        label = {"dataset": dataset, "parts": parts,
                 "network": network if network == "loopback" else f"netns@{a.link_rate}"}
        base = results.get((dataset, parts, network, "none"))
        if not base:
            continue
        for (d, k, n, _), reps in results.items():
            if (d, k, n) == (dataset, parts, network):
                rows.append(row(label, reps, base, bounds.get((dataset, parts, reps[0]["buffer_fraction"]))))
        for f in fractions:
            if (dataset, parts, f) in bounds and network == networks[0]:
                rows += bound_rows({**label, "network": "replay"}, f, bounds[(dataset, parts, f)], base)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "results.md").write_text(markdown(rows) + "\n")
    with (a.out / "results.csv").open("w", newline="") as fh:
        fields = list(dict.fromkeys(k for r in rows for k in r))
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    if rows:
        plot(rows, a.out / "side_by_side.png")
    print(markdown(rows))


if __name__ == "__main__":
    main()
