"""The open-loop summary as a Markdown table: one column per rank, and 'all' when there are several."""

from __future__ import annotations

from collections.abc import Callable

from rudder_agent.replay.open_loop.scoring import AGREE_SOURCES, SOURCES


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _rate(r: dict) -> str:
    return "n/a (n=0)" if not r["n"] else f"{r['pct']:.0f}% ({r['agreed']}/{r['n']})"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


TABLE: list[tuple[str, Callable[[dict], str]]] = [
    ("windows", lambda s: str(s["windows"])),
    ("model calls", lambda s: str(s["model_calls"])),
    ("valid %", lambda s: _pct(s["valid_pct"])),
    ("latency mean / median s", lambda s: f"{_seconds(s['latency_mean_s'])} / {_seconds(s['latency_median_s'])}"),
    ("latency p95 s", lambda s: _seconds(s.get("latency_p95_s"))),
    ("replace / skip", lambda s: f"{s['decisions']['replace']} / {s['decisions']['skip']}"),
    ("model / guard / no-diff / fallback", lambda s: " / ".join(str(s["sources"][k]) for k in SOURCES)),
    ("agrees with recorded", lambda s: _rate(s["agree_recorded"])),
    *[(f"  where recorded {src}", (lambda src: lambda s: _rate(s["agree_recorded_by_source"][src]))(src))
      for src in AGREE_SOURCES],
    ("agrees with oracle", lambda s: _rate(s["agree_oracle"])),
    ("agrees with what-if", lambda s: _rate(s["agree_whatif"])),
    ("Pass@1 %-Hits (agreeing)", lambda s: _rate(s["pass1_hits"])),
    ("Pass@1 comm (agreeing)", lambda s: _rate(s["pass1_comm"])),
]


def format_table(summary: dict) -> str:
    """A Markdown table: one column per rank (and 'all' when there are several)."""
    columns = [(f"rank {r}", s) for r, s in summary["per_rank"].items()]
    if len(columns) > 1:
        columns.append(("all", summary))
    header = "| open loop | " + " | ".join(name for name, _ in columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 1)]
    lines += ["| " + name + " | " + " | ".join(cell(s) for _, s in columns) + " |" for name, cell in TABLE]
    return "\n".join(lines)


def format_side_by_side(summaries: list[tuple[str, dict]]) -> str:
    """A Markdown table: one column per variant (its summary over every rank), the rows of :data:`TABLE`."""
    lines = ["| open loop | " + " | ".join(label for label, _ in summaries) + " |", "|" + "---|" * (len(summaries) + 1)]
    lines += ["| " + name + " | " + " | ".join(cell(s) for _, s in summaries) + " |" for name, cell in TABLE]
    return "\n".join(lines)
