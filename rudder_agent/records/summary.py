"""The summary record computed: a run's metric streams rolled up over all its trainers."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.records.epoch import median_after_first
from rudder_agent.records.floors import rate_bytes_per_s
from rudder_agent.records.replayed import ReplayBlock
from rudder_agent.records.run import RunRecords, read_run
from rudder_agent.records.model_share import ModelShare
from rudder_agent.records.run_summary import MachineTotals, RunSummary, ShareCost


def summarize(run_dir: Path) -> RunSummary:
    """Totals over all trainers; epoch time is the slowest trainer's, median after the first epoch."""
    return summarize_records(read_run(run_dir))


def summarize_records(run: RunRecords) -> RunSummary:
    """:func:`summarize` of a run already read."""
    cfg = run.config
    minibatches, epochs, evals, controllers = [], [], [], []
    for rank in sorted(run.streams, key=str):  # file-name order (rank 10 before 2): it fixes the float sums
        stream = run.streams[rank]
        minibatches += stream.minibatches
        epochs += stream.epochs
        evals += stream.evals
        controllers += stream.controllers
    epoch_time = defaultdict(float)
    for e in epochs:
        epoch_time[e.epoch] = max(epoch_time[e.epoch], e.epoch_time_s)
    n_epochs = len(epoch_time)
    total = lambda key: int(sum(getattr(m, key) for m in minibatches))  # noqa: E731
    inputs, remote, hits = total("input_nodes"), total("remote_inputs"), total("hits")
    ev = evals[0].model_dump() if evals else {}
    warm_rows = int(sum(c.get("warm_rows", 0) for c in controllers))
    comm_rows = total("comm_rows") + warm_rows
    row_bytes = total("comm_bytes") // total("comm_rows") if total("comm_rows") else 0
    buffered = cfg.buffer.controller.name != "none"
    window = cfg.buffer.window if buffered else 0  # minibatches sampled ahead
    # every trainer of a machine reads that machine's one link: count each machine once per epoch
    wire_by_machine: dict[tuple[int, int], int] = {}
    for e in epochs:
        if e.wire_rx_bytes is not None:
            key = (cfg.machine_of(e.rank), e.epoch)
            wire_by_machine[key] = max(wire_by_machine.get(key, 0), e.wire_rx_bytes)
    wire = list(wire_by_machine.values())
    # each direction of each link is shaped to the rate: the floor is the busiest one's bytes, per epoch
    busiest: dict[int, int] = {}
    for e in epochs:
        for sent in (e.wire_rx_bytes, e.wire_tx_bytes):
            if sent is not None:
                busiest[e.epoch] = max(busiest.get(e.epoch, 0), sent)
    return RunSummary.model_validate({
        "dataset": cfg.dataset,
        "parts": cfg.parts,
        "trainers_per_machine": cfg.trainers_per_machine,
        "buffer_scope": (("machine" if cfg.shares_buffer else "trainer") if buffered else None),
        "share_cost": share_cost(minibatches) if buffered and cfg.shares_buffer else None,
        "part_method": cfg.part_method,
        "epochs": n_epochs,
        "batch_size": cfg.batch_size,
        "fanouts": cfg.fanouts,
        "network": network_label(cfg),
        "controller": cfg.buffer.controller.name,
        "buffer_fraction": cfg.buffer.fraction if buffered else 0.0,
        "policy": cfg.buffer.policy.name if buffered else None,
        "window": window,
        "minibatches": len(minibatches),
        "input_nodes": inputs,
        "remote_inputs": remote,
        "remote_share": remote / inputs if inputs else 0.0,
        "hits": hits,
        "hit_pct": 100.0 * hits / remote if remote else 0.0,
        "miss_rows": total("misses"),
        "replace_rows": total("replace_rows"),
        "warm_rows": warm_rows,
        "comm_rows": comm_rows,
        "comm_bytes": total("comm_bytes") + warm_rows * row_bytes,
        "comm_rows_per_epoch": comm_rows / n_epochs if n_epochs else 0.0,
        "wire_bytes_per_epoch": sum(wire) / n_epochs if wire and n_epochs else None,
        "link_bytes_per_epoch": median_after_first(busiest[k] for k in sorted(busiest)) if busiest else None,
        "link_rate_bytes_s": link_rate(cfg),
        "epoch_time_s": median_after_first(epoch_time[k] for k in sorted(epoch_time)),
        "epoch_times_s": [epoch_time[k] for k in sorted(epoch_time)],
        "agent_wait_s": float(sum(m.t_wait for m in minibatches)),
        "window_ids_bytes": int(8 * window * (inputs / len(minibatches) if minibatches else 0)),
        "keep_ms_median": 1000 * float(np.median([m.t_keep for m in minibatches])) if minibatches else 0.0,
        "val_acc": ev.get("val_acc"),
        "test_acc": ev.get("test_acc"),
        "majority_test_acc": ev.get("majority_test_acc"),
        **controller_summary(controllers, minibatches),
        "machines": machine_totals(minibatches, controllers, cfg.machine_of, n_epochs),
    })


def share_cost(minibatches: Sequence[MinibatchMetrics]) -> ShareCost | None:
    """Medians and 95th percentiles of the shared buffer's waits, per minibatch (ms)."""
    shared = [m for m in minibatches if m.machine_op >= 0]
    if not shared:
        return None
    ms = lambda key: [round(1000 * float(v), 2) for v in np.percentile([getattr(m, key) for m in shared], [50, 95])]  # noqa: E731
    return ShareCost(waited_rows=sum(m.waited_rows for m in shared), refetched_rows=sum(m.refetched_rows for m in shared),
                     lock_wait_ms=ms("t_share_lock"), lock_hold_ms=ms("t_share_hold"), row_wait_ms=ms("t_share_wait"),
                     state_kb=round(max(m.state_bytes for m in shared) / 1000, 1))


def network_label(cfg) -> str:
    """Where the run's machines were: loopback, the emulated network at its link rate, or hosts over ssh."""
    if cfg.hosts is not None:
        return "ssh"
    return cfg.network if cfg.network == "loopback" else f"netns@{cfg.link_rate or 'unlimited'}"


def link_rate(cfg) -> float | None:
    """Each link's rate in bytes/s on the emulated network (None elsewhere, or unshaped)."""
    return rate_bytes_per_s(cfg.link_rate) if cfg.network == "netns" and cfg.link_rate else None


def machine_totals(minibatches: Sequence[MinibatchMetrics], controllers: list[dict], machine_of: Callable[[int], int],
                   n_epochs: int) -> list[MachineTotals]:
    """Each machine's trainers summed, by the settings' own rank-to-machine rule (the launcher's)."""
    machines: dict[int, dict] = defaultdict(lambda: {"ranks": set(), "remote_inputs": 0, "hits": 0, "comm_rows": 0})
    for m in minibatches:
        t = machines[machine_of(m.rank)]
        t["ranks"].add(m.rank)
        t["remote_inputs"] += m.remote_inputs
        t["hits"] += m.hits
        t["comm_rows"] += m.comm_rows
    for c in controllers:
        machines[machine_of(c["rank"])]["comm_rows"] += c.get("warm_rows", 0)
    return [MachineTotals(machine=k, ranks=sorted(t["ranks"]), remote_inputs=int(t["remote_inputs"]),
                          hits=int(t["hits"]), comm_rows=int(t["comm_rows"]),
                          comm_rows_per_epoch=t["comm_rows"] / n_epochs if n_epochs else 0.0)
            for k, t in sorted(machines.items())]


def replacement_interval(minibatches: Sequence[MinibatchMetrics]) -> float | None:
    """Mean number of minibatches between consecutive applied decisions (idle ones included), per trainer."""
    gaps = []
    for rank in {m.rank for m in minibatches}:
        steps = sorted(m.step for m in minibatches if m.rank == rank and m.decision_applied)
        gaps += list(np.diff(steps))
    return float(np.mean(gaps)) if gaps else None


def controller_summary(controllers: list[dict], minibatches: list[MinibatchMetrics]) -> dict:
    """Decision counts, latency percentiles and capacities over all trainers."""
    decisions = Counter()
    latencies: list[float] = []
    for c in controllers:
        decisions.update(c.get("decisions", {}))
        latencies += c.get("latencies_s", [])
    pct = lambda q: float(np.percentile(latencies, q)) if latencies else None  # noqa: E731
    requests = int(sum(c.get("requests", 0) for c in controllers))
    unanswered = sum((Counter(c.get("unanswered", {})) for c in controllers), Counter())
    return {
        "capacity": [c["capacity"] for c in sorted(controllers, key=lambda c: c["rank"])],
        "decisions": {k: decisions.get(k, 0) for k in ("replace", "skip", "invalid", "guarded", "no-difference")},
        "model_share": ModelShare.of(requests, decisions, unanswered,
                                     (m.decision_source for m in minibatches if m.decision_applied)),
        "requests": requests,
        "dropped_requests": int(sum(c.get("dropped", 0) for c in controllers)),
        "unanswered": dict(unanswered),
        "agent_cpu_s": float(sum(c.get("controller_cpu_s", 0.0) for c in controllers)),
        "latency_p50_s": pct(50),
        "latency_p95_s": pct(95),
        "replacement_interval": replacement_interval(minibatches),
        "applied": dict(Counter(f"{m.decision_source}:{m.decision_applied}" for m in minibatches
                                if m.decision_applied)),
        "verified_rows": int(sum(c.get("verified_rows", 0) for c in controllers)),
        "keep_memory_bytes": max((c.get("keep_memory_bytes", 0) for c in controllers), default=0),
        "agent": controllers[0].get("agent", {}) if controllers else {},
    }


def write_summary(run_dir: Path) -> RunSummary:
    """Compute and write ``summary.json``; returns it."""
    summary = summarize(run_dir)
    summary.write(run_dir)
    return summary


def write_replay_summary(run_dir: Path, controller: str, replay: ReplayBlock, buffer_fraction: float) -> RunSummary:
    """Compute and write a replay's ``summary.json``: the replayed controller, its buffer and the replay block on
    top of the roll-up (whose config is the recorded run's); returns it."""
    summary = summarize(run_dir).model_copy(
        update={"controller": controller, "buffer_fraction": buffer_fraction, "replay": replay})
    summary.write(run_dir)
    return summary
