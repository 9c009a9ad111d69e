"""Rows to Markdown (for reading, composite cells like the paper's Tables 2-4) and CSV (every raw column)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path

from rudder_agent.passk import PassRate, wilson
from rudder_agent.report.figures import rate_columns

Column = tuple[str, Callable[[dict], str]]
"""A Markdown column: header and how a row renders in it."""

NA = "n/a"


def num(value: float | None, digits: int = 1) -> str:
    """A number with thousands separators, n/a for None."""
    if value is None:
        return NA
    return f"{value:,}" if isinstance(value, int) else f"{value:,.{digits}f}"


def field(key: str, digits: int = 1) -> Callable[[dict], str]:
    return lambda row: num(row.get(key), digits)


def rate(prefix: str) -> Callable[[dict], str]:
    """'62 (-11/+13) n=40' as in the paper's Table 4: estimate, distance to the 95% bounds, decisions judged."""
    def cell(row: dict) -> str:
        value, lo, hi, n = (row.get(f"{prefix}{s}") for s in ("", "_lo", "_hi", "_n"))
        if value is None:
            return NA
        return f"{value:.0f} (-{value - lo:.0f}/+{hi - value:.0f}) n={n}"
    return cell


def pair(a: str, b: str, extra: str | None = None) -> Callable[[dict], str]:
    """'30/70' shares, optionally '(12 guarded)'."""
    def cell(row: dict) -> str:
        if row.get(a) is None:
            return NA
        text = f"{row[a]:.0f}/{row[b]:.0f}"
        return text + (f" ({row[extra]:.0f}% guarded)" if extra and row.get(extra) else "")
    return cell


RUN: Column = ("run", lambda r: str(r["run"]))
RANK: Column = ("rank", lambda r: str(r["rank"]))
VARIANT: list[Column] = [("controller", lambda r: str(r["controller"])), ("mode", lambda r: str(r["mode"])),
                         ("buffer %", field("buffer_pct", 0))]

FIGURES: list[Column] = [
    ("%-Hits", field("hit_pct")),
    ("comm rows", field("comm_rows")),
    ("vs none", lambda r: NA if r.get("comm_ratio_none") is None else f"{r['comm_ratio_none']:.2f}x"),
    ("comm rows/epoch", field("comm_rows_per_epoch", 0)),
    ("repl. interval", field("replacement_interval")),
    ("valid/invalid %", pair("valid_pct", "invalid_pct")),
    ("replace/skip %", pair("replace_pct", "skip_pct", "guarded_pct")),
    ("model asked/answered", lambda r: r["model_asked_answered"]),
    ("decided by model/guard/no-diff/idle/fallback/rule", lambda r: r["decided_by"]),
    ("Pass@1 %-Hits", rate("pass1_hits")),
    ("Pass@1 comm", rate("pass1_comm")),
    ("oracle agreement %", rate("oracle_agree")),
]
RUNS: list[Column] = [RUN, *VARIANT, *FIGURES]
TRAINERS: list[Column] = [RUN, RANK, *VARIANT, *FIGURES]

BOUNDS: list[Column] = [
    RUN, RANK, VARIANT[0], VARIANT[2],
    ("capacity", field("capacity")),
    ("%-Hits", field("hit_pct")),
    *[(f"{name} %-Hits (gap)", lambda r, n=name: f"{r[n + '_hit_pct']:.1f} ({r[n + '_hit_gap']:+.1f})")
      for name in ("oracle", "belady", "compulsory")],
    ("comm rows", field("comm_rows")),
    *[(f"{name} comm rows (run/bound)",
       lambda r, n=name: f"{r[n + '_comm_rows']:,} ({num(r[n + '_comm_ratio'], 2)}x)")
      for name in ("oracle", "belady", "compulsory")],
]


def markdown(rows: Sequence[dict], columns: Sequence[Column]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(h for h, _ in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r) for _, cell in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def pass_pivot(rows: Sequence[dict]) -> tuple[list[dict], list[Column]]:
    """Paper Table 4: Pass@1 %-Hits per controller variant (rows) and dataset (columns), runs with predictions only."""
    judged = [r for r in rows if r.get("pass1_hits_n")]
    counts: dict[tuple, list[int]] = {}
    for r in judged:  # several runs of one variant on one dataset pool their judged decisions
        n = r["pass1_hits_n"]
        k_n = counts.setdefault((r["controller"], r["mode"], r["buffer_pct"], r["dataset"]), [0, 0])
        k_n[0] += round(r["pass1_hits"] * n / 100)
        k_n[1] += n
    table: dict[tuple, dict] = {}
    for (*key, dataset), (k, n) in counts.items():
        row = table.setdefault(tuple(key), dict(zip(("controller", "mode", "buffer_pct"), key)))
        row[dataset] = rate("pass1_hits")(rate_columns("pass1_hits", PassRate(k, n, *wilson(k, n))))
    columns = VARIANT + [(d, lambda r, d=d: r.get(d, NA)) for d in sorted({r["dataset"] for r in judged})]
    return list(table.values()), columns


def write_csv(path: Path, rows: Sequence[dict]) -> None:
    """Every raw column, empty cells for None."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
