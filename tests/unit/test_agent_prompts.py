"""Prompt templates are versioned files whose variables are checked when they are loaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rudder_agent.settings.agent import AgentConfig
from rudder_agent.agent.controller import LLMController
from rudder_agent.agent.prompts import (
    SYSTEM_VARIABLES,
    USER_VARIABLES,
    PromptSet,
    PromptTemplateError,
    answer_format,
    system_values,
    user_values,
)
from rudder_agent.agent.state import AgentState, HistoryEntry, Progress, WindowSummary
from rudder_agent.decision import DecisionRequest, StaticFacts
from rudder_agent.llm.output import DecisionAnswer, ReasonedDecisionAnswer
from rudder_agent.paths import PROMPTS_DIR

ROOT = PROMPTS_DIR
FACTS = StaticFacts(dataset="reddit", num_nodes=232_965, num_edges=114_615_892, num_parts=4, partition=1,
                    local_nodes=58_000, halo_nodes=90_000, capacity=4_500, total_minibatches=600, feature_dim=602)


def window(first: int, hit_pct: float, stale: int = 30) -> WindowSummary:
    return WindowSummary(first_step=first, last_step=first + 9, minibatches=10, remote_inputs=10_000,
                         hits=int(100 * hit_pct), hit_pct=hit_pct, hit_trend_pp=-2.0, trend="falling", comm_rows=70_000,
                         comm_per_mb=7_000.0, replace_rows=0, stale=stale, occupancy=4_500, capacity=4_500)


def full_state() -> AgentState:
    history = [HistoryEntry(step=10 * i + 9, window=window(10 * i, 40.0 - i), decision="replace" if i % 2 else "skip",
                            source="model", expected_hits="increase", expected_comm="decrease",
                            hits_change_pp=-1.0, comm_change_per_mb=12.5) for i in range(5)]
    request = DecisionRequest(step=59, window=[], stale=30, occupancy=4_500, capacity=4_500)
    return AgentState(facts=FACTS, request=request, history=history, window=window(50, 35.0),
                      progress=Progress(done=60, total=600))


def copy_v1(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "decision" / "v1", tmp_path / "decision" / "v1")
    return tmp_path / "decision" / "v1"


def test_v1_loads_and_has_a_stable_hash():
    prompts = PromptSet.load(ROOT, "v1")
    assert prompts.version == "v1"
    assert len(prompts.sha256) == 64 and prompts.sha256 == PromptSet.load(ROOT, "v1").sha256


def test_hash_follows_the_text(tmp_path):
    folder = copy_v1(tmp_path)
    before = PromptSet.load(tmp_path, "v1").sha256
    (folder / "user.md").write_text((folder / "user.md").read_text() + "\nBe brief.\n")
    assert PromptSet.load(tmp_path, "v1").sha256 != before


def test_unknown_variable_fails_naming_variable_and_file(tmp_path):
    folder = copy_v1(tmp_path)
    (folder / "user.md").write_text((folder / "user.md").read_text() + "\nHit rate: {hit_rate}\n")
    with pytest.raises(PromptTemplateError, match=r"user\.md: unknown variable\(s\) \{hit_rate\}"):
        PromptSet.load(tmp_path, "v1")


def test_missing_required_variable_fails_naming_it(tmp_path):
    folder = copy_v1(tmp_path)
    (folder / "system.md").write_text((folder / "system.md").read_text().replace("{answer_format}", "JSON please"))
    with pytest.raises(PromptTemplateError, match=r"system\.md: required variable\(s\) \{answer_format\} not used"):
        PromptSet.load(tmp_path, "v1")


@pytest.mark.parametrize("bad,needle", [
    ("{hit_pct:.2f}", "must be a plain"),
    ("{hit_pct!r}", "must be a plain"),
    ("{window.hit_pct}", "must be a plain"),
    ("{}", "must be a plain"),
    ("a } brace", "literal braces"),
])
def test_fancy_placeholders_and_stray_braces_fail(tmp_path, bad, needle):
    folder = copy_v1(tmp_path)
    (folder / "user.md").write_text((folder / "user.md").read_text() + bad)
    with pytest.raises(PromptTemplateError, match=needle):
        PromptSet.load(tmp_path, "v1")


def test_doubled_braces_are_literal(tmp_path):
    folder = copy_v1(tmp_path)
    (folder / "user.md").write_text((folder / "user.md").read_text() + 'Example: {{"decision": "skip"}}')
    rendered = PromptSet.load(tmp_path, "v1").messages(full_state(), DecisionAnswer, 0.05, 5)[1].content
    assert rendered.endswith('Example: {"decision": "skip"}')


def test_missing_version_or_file_fails(tmp_path):
    with pytest.raises(PromptTemplateError, match="prompt version 'v9' not found"):
        PromptSet.load(ROOT, "v9")
    folder = copy_v1(tmp_path)
    (folder / "user.md").unlink()
    with pytest.raises(PromptTemplateError, match="prompt template not found: .*user.md"):
        PromptSet.load(tmp_path, "v1")


def test_controller_construction_fails_on_a_bad_template(tmp_path):
    folder = copy_v1(tmp_path)
    (folder / "user.md").write_text("{nonsense}")
    with pytest.raises(PromptTemplateError, match="nonsense"):
        LLMController(AgentConfig(model="scripted:unused", prompts_dir=tmp_path, prompt_version="v1"))


def test_agent_provides_exactly_the_declared_variables():
    state = full_state()
    assert set(system_values(FACTS, DecisionAnswer, 0.05)) == SYSTEM_VARIABLES
    assert set(user_values(state, 5)) == USER_VARIABLES


def test_static_part_first_and_identical_across_requests():
    prompts = PromptSet.load(ROOT, "v1")
    state = full_state()
    first = prompts.messages(state, DecisionAnswer, 0.05, 5)
    fresh = state.model_copy(update={"window": window(60, 20.0), "history": []})
    later = prompts.messages(fresh, DecisionAnswer, 0.05, 5)
    assert [m.type for m in first] == ["system", "human"]
    assert first[0].content == later[0].content
    assert first[1].content != later[1].content
    assert "%-Hits 35.0 (falling, -2.0 vs the previous window)" in first[1].content
    assert "(no decisions yet)" in later[1].content


def test_history_table_shows_the_last_decisions_and_their_effect():
    user = PromptSet.load(ROOT, "v1").messages(full_state(), DecisionAnswer, 0.05, 3)[1].content
    rows = [line for line in user.splitlines() if line[:1].isdigit() and " | " in line]
    decisions = {2: "skip", 3: "replace", 4: "skip"}
    assert rows == [f"{10 * i}-{10 * i + 9} | {40 - i}.0 | 7000 | 30 | {d} (model) | increase | -1.0 | +12"
                    for i, d in decisions.items()]


def test_answer_format_follows_the_schema():
    plain, cot = answer_format(DecisionAnswer), answer_format(ReasonedDecisionAnswer)
    assert '"decision": "replace" | "skip"' in plain and "reasoning" not in plain
    assert cot.startswith('{"reasoning": "<') and '"hits": "increase" | "decrease" | "unchanged"' in cot


def test_v1_stays_compact():
    """SmolLM2 reads ~2.75 characters a token here: the full v1 prompt must stay under ~800 tokens."""
    system, user = PromptSet.load(ROOT, "v1").messages(full_state(), ReasonedDecisionAnswer, 0.05, 5)
    assert len(system.content) + len(user.content) < 2300
