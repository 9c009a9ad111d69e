"""Several controllers on the same partition in one session, side by side with ratios to `none`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from rudder_agent.cluster.training import run_training
from rudder_agent.config import TrainConfig
from rudder_agent.registry import controller_class


def run_or_reuse(cfg: TrainConfig, overwrite: bool = False, timeout_s: float | None = None) -> dict:
    """A finished run's summary, or a fresh run (so interrupted comparisons resume)."""
    done = cfg.out_dir / "summary.json"
    if done.exists() and not overwrite:
        return json.loads(done.read_text())
    if cfg.out_dir.exists():
        shutil.rmtree(cfg.out_dir)
    return run_training(cfg, timeout_s)


def variants(base: TrainConfig, controllers: list[str], fractions: list[float]) -> list[TrainConfig]:
    """Controllers without a buffer (`none`) once, the others at every buffer fraction, each in its own run dir."""
    out = []
    for name in controllers:
        buffered = controller_class(name).uses_buffer
        for f in fractions if buffered else [0.0]:
            label = f"{name}-{f:g}" if buffered else name
            buffer = base.buffer.model_copy(update={"controller": name, "fraction": f or base.buffer.fraction})
            out.append(base.model_copy(update={"buffer": buffer, "out_dir": base.out_dir / label}))
    return out


def compare(base: TrainConfig, controllers: list[str], fractions: list[float], timeout_s: float | None = None,
            overwrite: bool = False) -> list[dict]:
    """Run (or reuse, unless ``overwrite``) every variant; returns their summaries, `none` first."""
    if "none" not in controllers:
        controllers = ["none", *controllers]
    return [run_or_reuse(cfg, overwrite, timeout_s) for cfg in variants(base, controllers, fractions)]


def comparison_table(summaries: list[dict]) -> str:
    """Markdown table; every ratio is to the `none` run of the same session."""
    base = next(s for s in summaries if s["controller"] == "none")
    ratio = lambda a, b: f"{a / b:.3f}" if b else "n/a"  # noqa: E731
    lines = [
        "| controller | buffer | comm rows/epoch | vs none | %-Hits | epoch s | vs none | decisions r/s/i/g/n "
        "| agent wait s | test acc |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        d = s.get("decisions", {})
        lines.append(
            f"| {s['controller']} | {100 * s['buffer_fraction']:.0f}% | {s['comm_rows_per_epoch']:,.0f} "
            f"| {ratio(s['comm_rows_per_epoch'], base['comm_rows_per_epoch'])} | {s['hit_pct']:.1f} "
            f"| {s['epoch_time_s']:.2f} | {ratio(s['epoch_time_s'], base['epoch_time_s'])} "
            f"| {d.get('replace', 0)}/{d.get('skip', 0)}/{d.get('invalid', 0)}/{d.get('guarded', 0)}"
            f"/{d.get('no-difference', 0)} "
            f"| {s['agent_wait_s']:.3f} | {s['test_acc']:.4f} |"
        )
    return "\n".join(lines)


def write_comparison(out_dir: Path, summaries: list[dict]) -> str:
    """Write ``comparison.md`` beside the runs and return its text."""
    text = comparison_table(summaries)
    (out_dir / "comparison.md").write_text(text + "\n")
    return text
