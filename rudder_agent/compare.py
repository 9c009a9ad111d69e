"""Several controllers (and keep policies) on the same partition in one session, side by side with ratios to `none`."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rudder_agent.cluster.training import run_training
from rudder_agent.config import BufferConfig, TrainConfig, read_run_config
from rudder_agent.errors import RudderError
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


def comparison_table(summaries: list[tuple[str, RunSummary]]) -> str:
    """Markdown table, one row per (variant label, summary); every ratio is to the `none` run of the same session."""
    base = next(s for _, s in summaries if s.controller == "none")
    ratio = lambda a, b: f"{a / b:.3f}" if b else "n/a"  # noqa: E731
    lines = [
        "| variant | policy | buffer | comm rows/epoch | vs none | wire MB/epoch | %-Hits | epoch s | vs none "
        "| decisions r/s/i/g/n | model asked/answered | decided by model/guard/no-diff/idle/fallback/rule "
        "| agent wait s | test acc |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, s in summaries:
        d, share = s.decisions, s.model_share or ModelShare()
        lines.append(
            f"| {label} | {s.policy or '-'} | {100 * s.buffer_fraction:.0f}% | {s.comm_rows_per_epoch:,.0f} "
            f"| {ratio(s.comm_rows_per_epoch, base.comm_rows_per_epoch)} | {wire_mb(s)} | {s.hit_pct:.1f} "
            f"| {s.epoch_time_s:.2f} | {ratio(s.epoch_time_s, base.epoch_time_s)} "
            f"| {d.get('replace', 0)}/{d.get('skip', 0)}/{d.get('invalid', 0)}/{d.get('guarded', 0)}"
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


def write_comparison(out_dir: Path, summaries: list[tuple[str, RunSummary]]) -> str:
    """Write ``comparison.md`` beside the runs and return its text."""
    trainers = summaries[0][1].trainers_per_machine or 1
    text = (f"{comparison_table(summaries)}\n\nPer machine ({trainers} trainer(s) each):\n\n"
            f"{machine_table(summaries)}")
    (out_dir / "comparison.md").write_text(text + "\n")
    return text
