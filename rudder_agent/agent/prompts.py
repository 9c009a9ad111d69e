"""Versioned prompt templates (rudder_agent/prompts/decision/<version>/{system,user}.md) with strict variables.

Templates use plain `{name}` placeholders (literal braces are doubled: `{{`). Loading checks
every placeholder against the variables the agent provides and the ones a template must
use, so a typo fails at start-up naming the variable and the file, never mid-training.
The system prompt holds only static text and facts, so llama.cpp/Ollama reuse its KV cache.
"""

from __future__ import annotations

import hashlib
import string
import typing
from dataclasses import dataclass
from pathlib import Path

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from rudder_agent.agent.state import AgentState, HistoryEntry
from rudder_agent.decision import StaticFacts, WhatIf
from rudder_agent.llm.output import AnswerModel

SYSTEM_VARIABLES = frozenset({
    "dataset", "num_nodes", "num_edges", "num_parts", "partition", "local_nodes", "halo_nodes",
    "capacity", "capacity_pct", "total_minibatches", "feature_dim", "end_pct", "answer_format", "buffer_sharers",
})
SYSTEM_REQUIRED = frozenset({"answer_format"})
USER_VARIABLES = frozenset({
    "done", "pending", "total_minibatches", "progress_pct", "first_step", "last_step", "minibatches",
    "hit_pct", "trend", "trend_pp", "comm_per_mb", "replace_rows", "stale", "occupancy", "capacity",
    "free", "history", "whatif", "whatif_source", "whatif_minibatches", "whatif_replace_rows", "whatif_skip_rows",
    "whatif_replace_hit_pct", "whatif_skip_hit_pct", "whatif_favours", "whatif_saving_rows",
})
USER_REQUIRED = frozenset({"hit_pct", "stale", "history"})


class PromptTemplateError(ValueError):
    """A prompt template that is missing, malformed, or uses the wrong variables."""


@dataclass(frozen=True)
class PromptTemplate:
    """One template file, checked against the variables it may and must use."""

    path: Path
    text: str

    @classmethod
    def load(cls, path: Path, allowed: frozenset[str], required: frozenset[str]) -> PromptTemplate:
        """Read and check a template; PromptTemplateError names the file and the variable."""
        if not path.is_file():
            raise PromptTemplateError(f"prompt template not found: {path}")
        text = path.read_text(encoding="utf-8")
        used = placeholders(text, path)
        unknown = sorted(used - allowed)
        if unknown:
            raise PromptTemplateError(
                f"{path}: unknown variable(s) {', '.join('{' + u + '}' for u in unknown)}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        missing = sorted(required - used)
        if missing:
            names = ", ".join("{" + m + "}" for m in missing)
            raise PromptTemplateError(f"{path}: required variable(s) {names} not used")
        return cls(path, text)

    def render(self, values: dict[str, str]) -> str:
        """The template with every placeholder filled."""
        return self.text.format_map(values)


def placeholders(text: str, path: Path) -> set[str]:
    """Names of the `{name}` placeholders in a template; anything fancier is an error."""
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(text) if name is not None]
    except ValueError as err:
        raise PromptTemplateError(f"{path}: {err} (write literal braces as {{{{ and }}}})") from err
    for name, spec, conv in fields:
        if not name.isidentifier() or spec or conv:
            written = name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "")
            raise PromptTemplateError(f"{path}: placeholder {{{written}}} must be a plain {{name}}")
    return {name for name, _, _ in fields}


@dataclass(frozen=True)
class PromptSet:
    """The system and user templates of one prompt version, with a hash for run records."""

    version: str
    system: PromptTemplate
    user: PromptTemplate

    @classmethod
    def load(cls, root: Path, version: str) -> PromptSet:
        """Load and check `root/decision/<version>/`; fails fast on any template problem."""
        folder = root / "decision" / version
        if not folder.is_dir():
            raise PromptTemplateError(f"prompt version {version!r} not found: {folder} does not exist")
        return cls(
            version,
            PromptTemplate.load(folder / "system.md", SYSTEM_VARIABLES, SYSTEM_REQUIRED),
            PromptTemplate.load(folder / "user.md", USER_VARIABLES, USER_REQUIRED),
        )

    @property
    def sha256(self) -> str:
        """Hash of both template texts, so a run records exactly which prompt it used."""
        return hashlib.sha256(self.system.text.encode() + b"\0" + self.user.text.encode()).hexdigest()

    def messages(
        self, state: AgentState, schema: AnswerModel, end_fraction: float, history_len: int
    ) -> list[BaseMessage]:
        """Static system message first (cacheable), then this request's window and history."""
        return [
            SystemMessage(self.system.render(system_values(state.facts, schema, end_fraction))),
            HumanMessage(self.user.render(user_values(state, history_len))),
        ]


def system_values(facts: StaticFacts, schema: AnswerModel, end_fraction: float) -> dict[str, str]:
    """Every system variable, formatted; the same for the whole run."""
    capacity_pct = 100.0 * facts.capacity / facts.halo_nodes if facts.halo_nodes else 0.0
    return {
        "dataset": facts.dataset,
        "num_nodes": f"{facts.num_nodes:,}",
        "num_edges": f"{facts.num_edges:,}",
        "num_parts": str(facts.num_parts),
        "partition": str(facts.partition),
        "local_nodes": f"{facts.local_nodes:,}",
        "halo_nodes": f"{facts.halo_nodes:,}",
        "capacity": f"{facts.capacity:,}",
        "capacity_pct": f"{capacity_pct:.0f}",
        "total_minibatches": f"{facts.total_minibatches:,}",
        "feature_dim": str(facts.feature_dim),
        "buffer_sharers": str(facts.buffer_sharers),
        "end_pct": f"{100 * end_fraction:g}",
        "answer_format": answer_format(schema),
    }


def user_values(state: AgentState, history_len: int) -> dict[str, str]:
    """Every user variable, formatted, from the summarised window, progress and history."""
    w, p = state.window, state.progress
    return {
        "done": f"{p.done:,}",
        "pending": f"{p.pending:,}",
        "total_minibatches": f"{p.total:,}",
        "progress_pct": f"{100 * p.done / p.total:.0f}" if p.total else "0",
        "first_step": str(w.first_step),
        "last_step": str(w.last_step),
        "minibatches": str(w.minibatches),
        "hit_pct": f"{w.hit_pct:.1f}",
        "trend": w.trend,
        "trend_pp": f"{w.hit_trend_pp:+.1f}",
        "comm_per_mb": f"{w.comm_per_mb:.0f}",
        "replace_rows": f"{w.replace_rows:,}",
        "stale": f"{w.stale:,}",
        "occupancy": f"{w.occupancy:,}",
        "capacity": f"{w.capacity:,}",
        "free": f"{w.free:,}",
        "history": history_table(state.history[-history_len:] if history_len else []),
        **whatif_values(state.whatif),
    }


def whatif_values(whatif: WhatIf | None) -> dict[str, str]:
    """The what-if as a ready block (``whatif``) and as single figures; "n/a" when none was played."""
    if whatif is None:
        figures = dict.fromkeys(("whatif_source", "whatif_minibatches", "whatif_replace_rows", "whatif_skip_rows",
                                 "whatif_replace_hit_pct", "whatif_skip_hit_pct", "whatif_favours",
                                 "whatif_saving_rows"), "n/a")
        return {"whatif": "What-if: not played for this request.", **figures}
    where = ("the next {n} minibatches (already sampled)" if whatif.source == "window"
             else "the last {n} minibatches (replayed as a stand-in for the next ones)").format(n=whatif.minibatches)
    other = "skip" if whatif.favours == "replace" else "replace"
    share = 100.0 * whatif.difference / max(whatif.replace_rows, whatif.skip_rows, 1)
    block = "\n".join([
        f"What-if over {where}:",
        f"- replace now: {whatif.replace_rows:,} rows fetched, %-Hits {whatif.hit_pct('replace'):.1f}",
        f"- skip now: {whatif.skip_rows:,} rows fetched, %-Hits {whatif.hit_pct('skip'):.1f}",
        f"{whatif.favours} fetches {whatif.difference:,} fewer rows than {other} ({share:.1f}%)."
        if whatif.difference else "Both fetch the same rows.",
    ])
    return {
        "whatif": block,
        "whatif_source": whatif.source,
        "whatif_minibatches": str(whatif.minibatches),
        "whatif_replace_rows": f"{whatif.replace_rows:,}",
        "whatif_skip_rows": f"{whatif.skip_rows:,}",
        "whatif_replace_hit_pct": f"{whatif.hit_pct('replace'):.1f}",
        "whatif_skip_hit_pct": f"{whatif.hit_pct('skip'):.1f}",
        "whatif_favours": whatif.favours,
        "whatif_saving_rows": f"{whatif.difference:,}",
    }


def history_table(entries: list[HistoryEntry]) -> str:
    """Past windows, decisions and the change measured in the window after each, oldest first."""
    if not entries:
        return "(no decisions yet)"
    rows = ["steps | %-Hits | comm | replaceable | decision | expected %-Hits | %-Hits change | comm change"]
    for e in entries:
        w = e.window
        hits_after = f"{e.hits_change_pp:+.1f}" if e.hits_change_pp is not None else "n/a"
        comm_after = f"{e.comm_change_per_mb:+.0f}" if e.comm_change_per_mb is not None else "n/a"
        rows.append(f"{w.first_step}-{w.last_step} | {w.hit_pct:.1f} | {w.comm_per_mb:.0f} | {w.stale} | "
                    f"{e.decision} ({e.source}) | {e.expected_hits or '-'} | {hits_after} | {comm_after}")
    return "\n".join(rows)


def answer_format(schema: AnswerModel) -> str:
    """The answer's shape in words, derived from the schema so prompt and constraint agree."""
    parts = []
    for name, field in schema.model_fields.items():
        choices = typing.get_args(field.annotation)
        value = " | ".join(f'"{c}"' for c in choices) if choices else f'"<{field.description}>"'
        parts.append(f'"{name}": {value}')
    notes = [f"- {name}: {field.description}" for name, field in schema.model_fields.items()
             if typing.get_args(field.annotation) and field.description]
    return "{" + ", ".join(parts) + "}\n" + "\n".join(notes)
