"""Several trainers per machine: rows per machine and epoch times, behind docs/machines.md.

Two tables, each from live `rudder train` runs (2 machines, T trainers each):

1. rows per machine (loopback, one run per cell: rows are exact, sampling is seeded): `none` (DistDGL as
   shipped, also what `rudder train` runs without --controller) against `fixed` (a buffer per trainer,
   ``--buffer-scope trainer``, with the default keep policy, look-ahead W=8, re-ranked at every minibatch),
   Belady's MIN for the same T buffers, the machine view of the same stream: one buffer of T x C rows shared
   by the T trainers (`rudder bounds RUN --machine`), and, for T > 1, the live shared buffer
   (`shared`: ``--buffer-scope machine``, the default; its rows depend on the trainers' interleaving).
   Every buffered run is traced, so its bounds are on its own stream.
2. epoch time (median after the first epoch, per run; then median and min-max over repeats) of `none`,
   `fixed` and (T > 1) `shared` on loopback and on the emulated network (``--network netns --link-rate
   RATE``, root only).
   Repeat r of every cell runs before repeat r+1 of any (alternating), so slow spells spread out.

Finished runs (a summary.json) are reused when the script runs again. Not a test: nothing is asserted.

    python benchmarks/machines.py --out /work/runs-machine/bench
    python benchmarks/machines.py --out DIR --timing-datasets ogbn-arxiv --repeats 2 --link-rate 200mbit
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

from rudder_agent.records.run import read_rank
from rudder_agent.records.run_summary import read_summary
from rudder_agent.replay.machine_share import machine_ranks, machine_share
from rudder_agent.replay.recording import load_recording


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="one sub-directory per run, plus machines.json")
    ap.add_argument("--datasets", default="ogbn-arxiv,com-dblp", help="rows table: datasets, comma-separated")
    ap.add_argument("--trainers", default="1,2", help="trainers per machine, comma-separated")
    ap.add_argument("--fractions", default="0.05,0.25", help="buffer fractions, comma-separated")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--timing-datasets", default="ogbn-arxiv", help="times table: datasets ('' for none)")
    ap.add_argument("--timing-fraction", type=float, default=0.25, help="times table: the buffer of `fixed`")
    ap.add_argument("--networks", default="loopback,netns", help="times table: networks, comma-separated")
    ap.add_argument("--link-rate", default="200mbit", help="netns: each machine's link")
    ap.add_argument("--repeats", type=int, default=2, help="times table: runs per cell")
    return ap.parse_args()


def train(out: Path, dataset: str, trainers: int, epochs: int, *flags: str) -> Path:
    """One `rudder train` run of 2 machines x ``trainers`` (reused when finished); its directory."""
    if read_summary(out) is None:
        cmd = [sys.executable, "-m", "rudder_agent.cli", "train", "--dataset", dataset, "--parts", "2",
               "--trainers-per-machine", str(trainers), "--epochs", str(epochs), *flags, "--out", str(out),
               "--overwrite"]
        print("$ rudder " + shlex.join(cmd[3:]), file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out


def live_rows(run: Path, ranks: list[int]) -> int:
    """Rows a live run's ``ranks`` fetched (misses, replacement rows and warm start)."""
    total = 0
    for rank in ranks:
        stream = read_rank(run, rank)
        total += sum(m.comm_rows for m in stream.minibatches) + int(stream.controller.get("warm_rows", 0))
    return total


def rows_table(args: argparse.Namespace) -> list[dict]:
    """Rows per machine: `none`, `fixed` live, Belady for T buffers, and the shared buffer of T x C by replay."""
    out = []
    for dataset in args.datasets.split(","):
        for T in map(int, args.trainers.split(",")):
            base = args.out / f"{dataset}-T{T}"
            none = train(base / "none", dataset, T, args.epochs, "--controller", "none", "--trace")
            for f in map(float, args.fractions.split(",")):
                fixed = train(base / f"fixed-{f:g}", dataset, T, args.epochs, "--controller", "fixed",
                              "--fraction", str(f), "--buffer-scope", "trainer", "--trace")
                shared = train(base / f"shared-{f:g}", dataset, T, args.epochs, "--controller", "fixed",
                               "--fraction", str(f), "--buffer-scope", "machine") if T > 1 else None
                for machine, ranks in machine_ranks(fixed).items():
                    share = machine_share([load_recording(fixed, r) for r in ranks], machine, fraction=f)
                    out.append({"dataset": dataset, "trainers": T, "fraction": f, "machine": machine, "ranks": ranks,
                                "none": live_rows(none, ranks), "fixed": live_rows(fixed, ranks),
                                "shared_live": live_rows(shared, ranks) if shared else None, **share.to_json()})
    return out


def times_table(args: argparse.Namespace) -> list[dict]:
    """Epoch times of `none` and `fixed` per dataset, T and network, repeats alternating."""
    if not args.timing_datasets:
        return []
    buffered = ["--controller", "fixed", "--fraction", str(args.timing_fraction)]
    variants = {"none": ["--controller", "none"], "fixed": [*buffered, "--buffer-scope", "trainer"],
                "shared": [*buffered, "--buffer-scope", "machine"]}
    networks = {"loopback": ["--network", "loopback"],
                "netns": ["--network", "netns", "--link-rate", args.link_rate]}
    cells = [(d, T, n, v) for d in args.timing_datasets.split(",") for n in args.networks.split(",")
             for T in map(int, args.trainers.split(",")) for v in variants if T > 1 or v != "shared"]
    runs: dict[tuple, list[Path]] = {c: [] for c in cells}
    for r in range(args.repeats):
        for d, T, n, v in cells:
            run = args.out / "times" / f"{d}-T{T}-{n}-{v}-r{r}"
            runs[(d, T, n, v)].append(train(run, d, T, args.epochs, *variants[v], *networks[n]))
    out = []
    for (d, T, n, v), dirs in runs.items():
        times = [read_summary(p).epoch_time_s for p in dirs]
        out.append({"dataset": d, "trainers": T, "network": n if n == "loopback" else f"netns {args.link_rate}",
                    "controller": v, "epoch_s": times, "median": statistics.median(times),
                    "comm_rows_per_epoch": read_summary(dirs[0]).comm_rows_per_epoch})
    return out


def print_rows(rows: list[dict]) -> None:
    print("| dataset | T | buffer | machine | `none` rows | `fixed` rows (vs none) | Belady, T buffers of C (vs none) "
          "| shared T x C: look-ahead (vs none) | shared T x C: Belady | shared ÷ separate: look-ahead, Belady "
          "| live `shared` rows (÷ `fixed`) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        n = r["none"]
        shared = (f"{r['shared']['lookahead']:,} ({r['shared']['lookahead'] / n:.3f}) | {r['shared']['belady']:,} "
                  f"| {r['ratios']['lookahead']:.3f}, {r['ratios']['belady']:.3f}") if r["trainers"] > 1 else "– | – | –"
        print(f"| {r['dataset']} | {r['trainers']} | {100 * r['fraction']:g}% | {r['machine']} | {n:,} "
              f"| {r['fixed']:,} ({r['fixed'] / n:.3f}) | {r['separate']['belady']:,} ({r['separate']['belady'] / n:.3f}) "
              f"| {shared} | {live_shared(r)} |")


def live_shared(r: dict) -> str:
    live = r.get("shared_live")
    return f"{live:,} ({live / r['fixed']:.3f})" if live else "–"


def print_times(rows: list[dict]) -> None:
    if not rows:
        return
    print("\n| dataset | T | network | controller | epoch s: median (min-max) | runs | comm rows/epoch |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['trainers']} | {r['network']} | `{r['controller']}` | {r['median']:.2f} "
              f"({min(r['epoch_s']):.2f}-{max(r['epoch_s']):.2f}) | {len(r['epoch_s'])} "
              f"| {r['comm_rows_per_epoch']:,.0f} |")


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = rows_table(args)
    print_rows(rows)
    (args.out / "machines.json").write_text(json.dumps({"rows": rows}, indent=2))
    times = times_table(args)
    print_times(times)
    (args.out / "machines.json").write_text(json.dumps({"rows": rows, "times": times}, indent=2))


if __name__ == "__main__":
    main()
