"""Several controllers (and keep policies) on the same partition in one session, side by side with ratios to `none`."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rudder_agent.cluster.training import run_training
from rudder_agent.config import BufferConfig, TrainConfig, read_run_config
from rudder_agent.errors import RudderError
from rudder_agent.records.floors import floors
from rudder_agent.records.model_share import ModelShare
from rudder_agent.records.run_summary import RunSummary, read_summary
from rudder_agent.registry import controller_class


def run_or_reuse(cfg: TrainConfig, overwrite: bool = False, timeout_s: float | None = None) -> RunSummary:
    """A finished run's summary if it ran with exactly these settings, or a fresh run (so interrupted
    comparisons resume). A finished run with other settings is refused, not reused and not replaced."""
    if not overwrite and (done := read_summary(cfg.out_dir)) is not None:
        recorded = read_run_config(cfg.out_dir / "config.json")
        if changed := [name for name in TrainConfig.model_fields if getattr(recorded, name) != getattr(cfg, name)]:
            raise RudderError(f"{cfg.out_dir} holds a finished run with other settings ({', '.join(changed)}); "
                              "pass --overwrite to run it again or choose another --out")
        return done
    if cfg.out_dir.exists():
        shutil.rmtree(cfg.out_dir)
    return run_training(cfg, timeout_s)


PRESETS: dict[str, tuple[str, dict]] = {
    "paper": ("llm", {"policy": "decay", "prompt_version": "v1", "whatif": False}),
}
"""Named variants: ``paper`` is the paper's Rudder (the LLM agent, the decay policy, prompt v1, no what-if)."""


@dataclass(frozen=True)
class Variant:
    """One entry of ``--controllers``: ``NAME`` or ``NAME@POLICY`` (a controller or a preset, a keep policy)."""

    label: str
    controller: str
    settings: dict

    @classmethod
    def parse(cls, spec: str) -> Variant:
        name, _, policy = spec.strip().partition("@")
        controller, settings = PRESETS.get(name, (name, {}))
        return cls(spec.strip(), controller, {**settings, **({"policy": policy} if policy else {})})

    def buffer(self, values: dict[str, Any], fraction: float) -> BufferConfig:
        """The settings given (by name) with this variant's controller, settings and buffer fraction (validated)."""
        return BufferConfig.from_values({**values, **self.settings, "controller": self.controller,
                                         **({"fraction": fraction} if fraction else {})})


def parse_variants(specs: str) -> list[Variant]:
    """``--controllers`` as variants, ``none`` first (always included, once)."""
    out = [Variant.parse(s) for s in specs.split(",") if s.strip()]
    return [Variant.parse("none")] * all(v.controller != "none" for v in out) + out


def variants(base: TrainConfig, values: dict[str, Any], specs: list[Variant],
             fractions: list[float]) -> list[tuple[Variant, TrainConfig]]:
    """Variants without a buffer (`none`) once, the others at every buffer fraction, each in its own run dir.

    ``values``: the buffer settings given (by name), every variant's base."""
    out = []
    for v in specs:
        buffered = controller_class(v.controller).spec.uses_buffer
        for f in fractions if buffered else [0.0]:
            label = f"{v.label}-{f:g}" if buffered else v.label
            out.append((v, base.model_copy(update={"buffer": v.buffer(values, f), "out_dir": base.out_dir / label})))
    return out


def compare(base: TrainConfig, values: dict[str, Any], specs: list[Variant], fractions: list[float],
            timeout_s: float | None = None, overwrite: bool = False) -> list[tuple[str, RunSummary]]:
    """Run (or reuse, unless ``overwrite``) every variant; returns each variant's label and summary, `none` first."""
    return [(v.label, run_or_reuse(cfg, overwrite, timeout_s)) for v, cfg in variants(base, values, specs, fractions)]


TWIN_MAY_DIFFER = frozenset({"network", "link_rate", "pull_from", "pull_chunk_ms", "out_dir"})
"""What a run's loopback twin (its compute floor) may have been recorded with otherwise: where it ran."""


def loopback_twins(runs: list[tuple[Variant, TrainConfig]], loopback_dir: Path) -> list[RunSummary | None]:
    """Each run's twin on loopback, for its compute floor: the finished run of the same name (``none``,
    ``fixed-0.25``) in ``loopback_dir``, a `rudder compare --out` on loopback; None where there is none. A twin
    recorded elsewhere than on loopback, or with other settings, is refused: its epoch time is no floor."""
    twins: list[RunSummary | None] = []
    for _, cfg in runs:
        twin = Path(loopback_dir) / cfg.out_dir.name
        summary = read_summary(twin)
        if summary is None or not (twin / "config.json").is_file():
            twins.append(None)
            continue
        recorded = read_run_config(twin / "config.json")
        if recorded.network != "loopback" or recorded.hosts is not None:
            raise RudderError(f"{twin} did not run on loopback: a compute floor is the same run on loopback "
                              "(record it with rudder compare --network loopback)")
        if changed := [name for name in TrainConfig.model_fields
                       if name not in TWIN_MAY_DIFFER and getattr(recorded, name) != getattr(cfg, name)]:
            raise RudderError(f"{twin} ran with other settings ({', '.join(changed)}) than {cfg.out_dir.name} here: "
                              "its epoch time is no compute floor for it; record the loopback runs with the same "
                              "options but --network")
        twins.append(summary)
    return twins


def emulated(summary: RunSummary) -> bool:
    """Whether the run was on the emulated network (where its link has a floor)."""
    return (summary.network or "").startswith("netns")


def comparison_table(summaries: list[tuple[str, RunSummary]], twins: list[RunSummary | None] | None = None) -> str:
    """Markdown table, one row per (variant label, summary); every ratio is to the `none` run of the same session.

    On the emulated network, each run's floors too (:mod:`rudder_agent.records.floors`): its link floor, its
    compute floor (its loopback twin's epoch, in ``twins`` by position; ``-`` without) and the epoch over the
    larger of the two."""
    base = next(s for _, s in summaries if s.controller == "none")
    ratio = lambda a, b: f"{a / b:.3f}" if b else "n/a"  # noqa: E731
    two = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    twins = twins or [None] * len(summaries)
    floored = any(emulated(s) for _, s in summaries)
    lines = [
        "| variant | policy | buffer | comm rows/epoch | vs none | wire MB/epoch | %-Hits | epoch s | vs none "
        + "| link floor s | compute floor s | vs floor " * floored
        + "| decisions r/s/i/g/n | model asked/answered | decided by model/guard/no-diff/idle/fallback/rule "
        "| agent wait s | test acc |",
        "|---|---|---|---|---|---|---|---|---|" + "---|---|---|" * floored + "---|---|---|---|---|",
    ]
    for (label, s), twin in zip(summaries, twins, strict=True):
        d, share = s.decisions, s.model_share or ModelShare()
        f = floors(s, twin)
        lines.append(
            f"| {label} | {s.policy or '-'} | {100 * s.buffer_fraction:.0f}% | {s.comm_rows_per_epoch:,.0f} "
            f"| {ratio(s.comm_rows_per_epoch, base.comm_rows_per_epoch)} | {wire_mb(s)} | {s.hit_pct:.1f} "
            f"| {s.epoch_time_s:.2f} | {ratio(s.epoch_time_s, base.epoch_time_s)} "
            + (f"| {two(f.link_s)} | {two(f.compute_s)} | {two(f.ratio)} " if floored else "")
            + f"| {d.get('replace', 0)}/{d.get('skip', 0)}/{d.get('invalid', 0)}/{d.get('guarded', 0)}"
            f"/{d.get('no-difference', 0)} "
            f"| {share.asked_answered()} | {share.decided_by()} "
            f"| {s.agent_wait_s:.3f} | {s.test_acc:.4f} |"
        )
    return "\n".join(lines)


def machine_table(summaries: list[tuple[str, RunSummary]]) -> str:
    """Markdown table of comm rows/epoch per machine (its trainers summed), one row per variant."""
    machines = sorted({m.machine for _, s in summaries for m in s.machines})
    lines = ["| variant | buffer | " + " | ".join(f"machine {k} rows/epoch" for k in machines) + " |",
             "|---|---|" + "---|" * len(machines)]
    for label, s in summaries:
        rows = {m.machine: m.comm_rows_per_epoch for m in s.machines}
        lines.append(f"| {label} | {100 * s.buffer_fraction:.0f}% | "
                     + " | ".join(f"{rows[k]:,.0f}" if k in rows else "-" for k in machines) + " |")
    return "\n".join(lines)


def wire_mb(summary: RunSummary) -> str:
    """Megabytes per epoch into the machines over their links (all traffic; emulated network only, else -)."""
    wire = summary.wire_bytes_per_epoch
    return "-" if wire is None else f"{wire / 1e6:.1f}"


def floors_note(summaries: list[tuple[str, RunSummary]], twins: list[RunSummary | None] | None = None) -> str:
    """The footnote of the table's floor columns ('' where it has none)."""
    if not any(emulated(s) for _, s in summaries):
        return ""
    twins = twins or [None] * len(summaries)
    found = [floors(s, twin) for (_, s), twin in zip(summaries, twins, strict=True)]
    note = ("Floors: link floor = the busiest direction of the busiest machine's link, bytes per epoch (median "
            "after the first) / the link rate; compute floor = the same variant's epoch s on loopback "
            "(--compute-floor-from); vs floor = epoch s / the larger floor (1.00: at the floor).")
    if any(f.compute_s is None for f in found):
        note += (" Compute floor -: no loopback run of that variant, so its vs floor is to the link floor "
                 "alone.")
    if any(f.link_s is None for f in found):
        note += " Link floor -: no link bytes recorded, or an unshaped link."
    return note


def write_comparison(out_dir: Path, summaries: list[tuple[str, RunSummary]],
                     twins: list[RunSummary | None] | None = None) -> str:
    """Write ``comparison.md`` beside the runs and return its text (``twins``: each run's loopback twin, or None,
    for its compute floor)."""
    trainers = summaries[0][1].trainers_per_machine or 1
    note = floors_note(summaries, twins)
    text = "\n\n".join([comparison_table(summaries, twins), *([note] if note else []),
                         f"Per machine ({trainers} trainer(s) each):", machine_table(summaries)])
    (out_dir / "comparison.md").write_text(text + "\n")
    return text
