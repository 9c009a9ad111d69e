"""Roll the per-rank metric streams of a run up into ``summary.json``."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from rudder_agent.config import TrainConfig
from rudder_agent.metrics import median_after_first, read_jsonl


def summarize(run_dir: Path) -> dict:
    """Totals over all trainers; epoch time is the slowest trainer's, median after the first epoch."""
    cfg = TrainConfig.model_validate_json((run_dir / "config.json").read_text())
    ranks = sorted(run_dir.glob("metrics-rank*.jsonl"))
    minibatches, epochs, evals = [], [], []
    for path in ranks:
        rows = read_jsonl(path)
        minibatches += [r for r in rows if r["kind"] == "minibatch"]
        epochs += [r for r in rows if r["kind"] == "epoch"]
        evals += [r for r in rows if r["kind"] == "eval"]
    epoch_time = defaultdict(float)
    for e in epochs:
        epoch_time[e["epoch"]] = max(epoch_time[e["epoch"]], e["epoch_time_s"])
    n_epochs = len(epoch_time)
    total = lambda key: int(sum(m[key] for m in minibatches))  # noqa: E731
    inputs, remote, hits = total("input_nodes"), total("remote_inputs"), total("hits")
    ev = evals[0] if evals else {}
    return {
        "dataset": cfg.dataset,
        "parts": cfg.parts,
        "part_method": cfg.part_method,
        "epochs": n_epochs,
        "batch_size": cfg.batch_size,
        "fanouts": cfg.fanouts,
        "controller": cfg.buffer.controller,
        "buffer_fraction": cfg.buffer.fraction if cfg.buffer.controller != "none" else 0.0,
        "minibatches": len(minibatches),
        "input_nodes": inputs,
        "remote_inputs": remote,
        "remote_share": remote / inputs if inputs else 0.0,
        "hits": hits,
        "hit_pct": 100.0 * hits / remote if remote else 0.0,
        "miss_rows": total("misses"),
        "replace_rows": total("replace_rows"),
        "comm_rows": total("comm_rows"),
        "comm_bytes": total("comm_bytes"),
        "comm_rows_per_epoch": total("comm_rows") / n_epochs if n_epochs else 0.0,
        "epoch_time_s": median_after_first(epoch_time[k] for k in sorted(epoch_time)),
        "epoch_times_s": [epoch_time[k] for k in sorted(epoch_time)],
        "agent_wait_s": float(sum(m["t_wait"] for m in minibatches)),
        "val_acc": ev.get("val_acc"),
        "test_acc": ev.get("test_acc"),
        "majority_test_acc": ev.get("majority_test_acc"),
        **{k: v for k, v in ev.items() if k not in {"kind", "rank", "val_acc", "test_acc", "majority_test_acc"}},
    }


def write_summary(run_dir: Path) -> dict:
    """Compute and write ``summary.json``; returns it."""
    summary = summarize(run_dir)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
