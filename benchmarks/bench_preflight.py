"""How long does a bad setting take to be refused? (the claim: seconds, before anything is partitioned or started)

Runs the real `rudder` command as a user starts it (a new Python process each time) with one bad setting per
case, alternating the cases over ``--repeats`` rounds, and reports the median and range of the seconds from
start to exit with its exit code. The tests check what is refused and that nothing started
(tests/unit/test_preflight.py); the time lives here, where a slow host makes a figure, not a failure.

    python benchmarks/bench_preflight.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE = ["train", "--dataset", "cora", "--parts", "2", "--epochs", "1"]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cases(port: int) -> dict[str, list[str]]:
    """Case name -> command line; from the cheapest check (a value range) to a remote model server that refuses."""
    return {
        "value out of range (--buffer-fraction 0)": [*BASE, "--buffer-fraction", "0"],
        "unknown dataset": ["train", "--dataset", "nope", "--parts", "2"],
        "prompt version not found": [*BASE, "--controller", "llm", "--prompt-version", "v9"],
        "OpenAI-compatible server refusing": [*BASE, "--controller", "llm", "--model",
                                              f"openai:m@http://127.0.0.1:{port}/v1"],
        "Ollama refusing": [*BASE, "--controller", "llm", "--model", "ollama:gemma3:4b"],
        "classifier without a model": [*BASE, "--controller", "classifier"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    port = closed_port()
    table = cases(port)
    seconds: dict[str, list[float]] = {name: [] for name in table}
    codes: dict[str, set[int]] = {name: set() for name in table}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RUDDER_CACHE": str(Path(tmp) / "cache"), "OLLAMA_HOST": f"127.0.0.1:{port}"}
        for round_ in range(args.repeats):
            for name, argv in table.items():
                tic = time.perf_counter()
                proc = subprocess.run([sys.executable, "-m", "rudder_agent.cli", *argv, "--out",
                                       str(Path(tmp) / f"run-{round_}")], capture_output=True, text=True, env=env)
                seconds[name].append(time.perf_counter() - tic)
                codes[name].add(proc.returncode)
    rows = {name: {"median_s": statistics.median(s), "min_s": min(s), "max_s": max(s), "exit": sorted(codes[name])}
            for name, s in seconds.items()}
    print(f"| bad setting | median s [min-max] of {args.repeats} | exit |\n|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['median_s']:.2f} [{r['min_s']:.2f}-{r['max_s']:.2f}] | {','.join(map(str, r['exit']))} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
