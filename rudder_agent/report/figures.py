"""The numbers of one table row (a run, or one rank of it), computed from its metric streams."""

from __future__ import annotations

from collections.abc import Sequence

from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.passk import PassOptions, PassRate, judge, pass_rate
from rudder_agent.records.decisions import decided
from rudder_agent.records.model_share import ModelShare
from rudder_agent.records.summary import replacement_interval
from rudder_agent.report.runs import Run

Labels = dict[int, str]
"""Oracle label per step of one rank."""


def share(part: int, whole: int) -> float | None:
    """Percentage, None when there is nothing to share."""
    return 100.0 * part / whole if whole else None


def rate_columns(prefix: str, rate: PassRate | None) -> dict:
    """A PassRate as percentages: value, 95% interval and the number judged."""
    if rate is None or not rate.n:
        return {prefix: None, f"{prefix}_lo": None, f"{prefix}_hi": None, f"{prefix}_n": 0}
    return {prefix: 100 * rate.rate, f"{prefix}_lo": 100 * rate.lo, f"{prefix}_hi": 100 * rate.hi,
            f"{prefix}_n": rate.n}


def decision_figures(streams: Sequence[list[MinibatchMetrics]], labels: Sequence[Labels | None],
                     opts: PassOptions) -> dict:
    """Decision mix, validity, Pass@1 (hits, comm) and oracle agreement, pooled over the ranks' streams."""
    applied = [m for s in streams for m in s if decided(m)]
    answers = [m for m in applied if m.decision_source in ("model", "fallback") and m.decision_valid is not None]
    sourced = [m for m in applied if m.decision_source is not None]
    replace = sum(m.decision_applied == "replace" for m in applied)
    agree = [m.decision_applied == lab[m.step] for s, lab in zip(streams, labels) if lab
             for m in s if decided(m) and m.step in lab]
    hits = [j.passed for s in streams for j in judge(s, "hits", opts.k, opts.eps_hits)]
    comm = [j.passed for s in streams for j in judge(s, "comm", opts.k, opts.eps_comm)]
    return {
        "decisions": len(applied),
        "replace_pct": share(replace, len(applied)),
        "skip_pct": share(len(applied) - replace, len(applied)),
        "guarded_pct": share(sum(m.decision_source == "guard" for m in sourced), len(sourced)),
        "valid_pct": share(sum(bool(m.decision_valid) for m in answers), len(answers)),
        "invalid_pct": share(sum(not m.decision_valid for m in answers), len(answers)),
        **rate_columns("pass1_hits", pass_rate(hits)),
        **rate_columns("pass1_comm", pass_rate(comm)),
        **rate_columns("oracle_agree", pass_rate(agree) if any(labels) else None),
    }


def model_columns(share: ModelShare) -> dict:
    """Who decided: the model's calls and answers, and the applied decisions by source."""
    return {"model_asked_answered": share.asked_answered(), "decided_by": share.decided_by()}


def identity(run: Run, rank: int | str) -> dict:
    """The columns that say which run (and rank) a row is."""
    return {"run": run.name, "rank": rank, "dataset": run.config.dataset, "parts": run.config.parts,
            "controller": run.label, "mode": run.mode, "buffer_pct": 100 * run.fraction}


def run_row(run: Run, labels: dict[int, Labels], opts: PassOptions) -> dict:
    """One row per run: traffic from summary.json (warm rows included), decisions pooled over ranks."""
    s, ranks = run.summary, sorted(run.minibatches)
    return {
        **identity(run, "all"),
        "minibatches": s.minibatches,
        "hit_pct": s.hit_pct,
        "comm_rows": s.comm_rows,
        "comm_rows_per_epoch": s.comm_rows_per_epoch,
        "replacement_interval": s.replacement_interval,
        **decision_figures([run.minibatches[r] for r in ranks], [labels.get(r) for r in ranks], opts),
        **model_columns(ModelShare.from_records(run.controllers.values(),
                                                (m for r in ranks for m in run.minibatches[r]))),
    }


def rank_row(run: Run, rank: int, labels: Labels | None, opts: PassOptions) -> dict:
    """One row per trainer of a run, from its own stream (plus its warm-start rows)."""
    rows = run.minibatches[rank]
    remote = sum(m.remote_inputs for m in rows)
    comm = sum(m.comm_rows for m in rows) + int(run.controllers.get(rank, {}).get("warm_rows", 0))
    epochs = len({m.epoch for m in rows})
    return {
        **identity(run, rank),
        "minibatches": len(rows),
        "hit_pct": share(sum(m.hits for m in rows), remote) or 0.0,
        "comm_rows": comm,
        "comm_rows_per_epoch": comm / epochs if epochs else 0.0,
        "replacement_interval": replacement_interval(rows),
        **decision_figures([rows], [labels], opts),
        **model_columns(ModelShare.from_records([run.controllers.get(rank, {})], rows)),
    }


def with_ratio(row: dict, reference: dict | None) -> dict:
    """Add comm rows per epoch relative to the matching `none` row (None when there is no reference)."""
    ref = reference["comm_rows_per_epoch"] if reference else 0
    return {**row, "comm_ratio_none": row["comm_rows_per_epoch"] / ref if ref else None}


def reference(run: Run, runs: Sequence[Run]) -> Run | None:
    """The first `none` run among ``runs`` with the same graph, partitioning and sampling as ``run``."""
    return next((r for r in runs if r.controller == "none" and r.group == run.group), None)
