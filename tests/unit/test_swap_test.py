"""The swap test: the model's decision is read from how its preference moves when the what-if's figures swap."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage

from rudder_agent.settings.agent import AgentConfig
from rudder_agent.agent.context import Context
from rudder_agent.agent.graph import build_graph
from rudder_agent.agent.model_nodes import swap_test
from rudder_agent.agent.nodes import build_context, collect_metrics
from rudder_agent.agent.prompts import PromptSet
from rudder_agent.agent.state import AgentState
from rudder_agent.config import BufferConfig
from rudder_agent.settings.upgrade import upgrade
from rudder_agent.errors import SettingError
from rudder_agent.agent.controller import LLMController
from rudder_agent.llm.backends import make_chat_model
from rudder_agent.llm.output import InvalidAnswer, decision_logodds
from rudder_agent.paths import PROMPTS_DIR
from tests.unit.test_agent_graph import FACTS, REPLACE

BRIEF = {k: v for k, v in REPLACE.items() if k != "reason"}
"""The embedded model's answer (no reason text)."""
from tests.unit.test_agent_late_answers import CONTESTED, request


def tokens(text_before: str, alternatives: dict[str, float]) -> list[dict]:
    """OpenAI-style token log-probabilities: ``text_before`` as one token, then the decision token's alternatives."""
    best = max(alternatives, key=alternatives.get)
    return [{"token": text_before, "logprob": -0.1, "top_logprobs": []},
            {"token": best, "logprob": alternatives[best],
             "top_logprobs": [{"token": t, "logprob": lp} for t, lp in alternatives.items()]},
            {"token": '", "hits": "up"}', "logprob": -0.1, "top_logprobs": [{"token": "x", "logprob": -0.1}]}]


@pytest.mark.parametrize("before, alternatives, expected", [
    ('{\n  "decision": "', {"replace": -0.3, "skip": -1.5, "re": -4.0}, 1.2),
    ('{"decision":', {' "re': -0.9, ' "sk': -0.6, ' "': -3.0}, -0.3),  # quote and word in one token
    ('{"decision": "', {"replace": -0.2, "The": -5.0, "A": -6.0}, 5.8),  # skip not listed: the floor
])
def test_logodds_at_the_decision_token(before, alternatives, expected):
    assert decision_logodds(tokens(before, alternatives)) == pytest.approx(expected)


def test_no_logprobs_or_no_decision_is_an_invalid_answer():
    with pytest.raises(InvalidAnswer, match="returned no log-probabilities"):
        decision_logodds(None)
    with pytest.raises(InvalidAnswer, match="no log-probabilities at the answer's decision"):
        decision_logodds(tokens('{"hits": "', {"up": -0.1}))


@pytest.mark.parametrize("shown, swapped, said, expected", [
    (1.17, 0.93, "replace", "replace"),  # biased towards replace, but less so when skip has replace's figures
    (0.93, 1.17, "replace", "skip"),  # same bias; replace's figures are the worse ones: skip
    (0.50, 0.50, "skip", "skip"),  # the figures moved nothing: its own word
])
def test_swap_test_reads_the_difference_not_the_bias(shown, swapped, said, expected):
    decision, reason = swap_test(shown, swapped, said, "because")
    assert decision == expected and reason.startswith(f"swap test {shown:+.2f} vs {swapped:+.2f} (said {said})")


class BiasedReader:
    """Always says replace; its log-odds for replace are 1.0 plus 0.3 per call in ``reads`` (the figures it 'saw')."""

    def __init__(self, reads: list[float], answer: dict = REPLACE):
        self.reads, self.seen, self.answer = list(reads), [], answer

    def invoke(self, messages):
        self.seen.append(messages)
        logodds = 1.0 + self.reads.pop(0)
        content = tokens('{"decision": "', {"replace": -0.2, "skip": -0.2 - logodds})
        return AIMessage(json.dumps(self.answer), response_metadata={"logprobs": {"content": content}})


def state_of(req) -> AgentState:
    state = AgentState(facts=FACTS, request=req)
    state = state.model_copy(update=collect_metrics(state))
    return state.model_copy(update={**build_context(state), "whatif": req.whatif})


@pytest.mark.parametrize("reads, expected", [([0.3, 0.0], "replace"), ([0.0, 0.3], "skip")])
def test_the_model_is_asked_again_with_the_figures_swapped(reads, expected):
    config = AgentConfig(model="scripted:unused.jsonl", swap_test="on")
    prompts = PromptSet.load(PROMPTS_DIR, "v2")
    chat = BiasedReader(reads)
    state = state_of(request(9, *CONTESTED))
    outcome = build_graph(chat, prompts, config).invoke(state)["outcome"]
    assert (outcome.source, outcome.valid, outcome.decision) == ("model", True, expected)
    assert outcome.reason.startswith("swap test") and "(said replace)" in outcome.reason
    assert outcome.route[-4:] == ["ask_model", "read_answer", "swap_test", "record"]
    assert len(chat.seen) == 2
    swapped = state.model_copy(update={"whatif": state.whatif.swapped()})
    prompt = Context(chat, prompts, config).prompt
    assert chat.seen[1] == prompt(swapped) != chat.seen[0]  # the second prompt shows the swapped figures
    assert (swapped.whatif.replace_rows, swapped.whatif.skip_rows) == (CONTESTED[1], CONTESTED[0])


def test_without_the_swap_test_one_call_and_the_models_word():
    chat = BiasedReader([0.0, 0.3], BRIEF)
    graph = build_graph(chat, PromptSet.load(PROMPTS_DIR, "v2"), AgentConfig(model="llamacpp:smollm2-135m",
                                                                           swap_test="off"))
    outcome = graph.invoke(state_of(request(9, *CONTESTED)))["outcome"]
    assert (outcome.decision, len(chat.seen)) == ("replace", 1)
    assert "swap_test" not in outcome.route


def free(req):
    """The same request under a keep policy that re-ranks for free (lfu, lookahead)."""
    return req.model_copy(update={"whatif": req.whatif.model_copy(update={"replace_is_free": True})})


@pytest.mark.parametrize("replace_is_free, calls, decision", [(False, 2, "skip"), (True, 1, "replace")])
def test_by_default_the_swap_test_decides_where_replacing_costs_rows(replace_is_free, calls, decision):
    """auto (the default): decay's what-ifs go to the swap test; a free re-ranking keeps the model's word."""
    config = AgentConfig(model="llamacpp:smollm2-135m")
    assert config.swap_test == "auto" and config.backend_options().top_logprobs > 0
    chat = BiasedReader([0.0, 0.3], BRIEF)  # reads the figures: prefers replace less when they favour replace
    graph = build_graph(chat, PromptSet.load(PROMPTS_DIR, "v2"), config)
    req = request(9, *CONTESTED)
    outcome = graph.invoke(state_of(free(req) if replace_is_free else req))["outcome"]
    assert (outcome.source, outcome.decision, len(chat.seen)) == ("model", decision, calls)


def test_auto_on_a_backend_without_logprobs_is_the_models_word():
    """Ollama returns no log-probabilities: auto asks once (on would be refused at start, below)."""
    config = AgentConfig(model="ollama:gemma3:4b", swap_test="auto")
    assert not config.reads_logprobs and config.backend_options().top_logprobs == 0
    make_chat_model(config.model, config.backend_options())  # not refused (as "on" is)
    chat = BiasedReader([0.0, 0.3])
    outcome = build_graph(chat, PromptSet.load(PROMPTS_DIR, "v2"), config).invoke(state_of(request(9, *CONTESTED)))
    outcome = outcome["outcome"]
    assert (outcome.decision, len(chat.seen)) == ("replace", 1)


@pytest.mark.parametrize("recorded, mode", [(True, "on"), (False, "off"), ("auto", "auto")])
def test_runs_recorded_with_the_old_flag_still_load(recorded, mode):
    flat = {"controller": "llm", "llm_swap_test": recorded}  # a version-1 config's buffer
    assert BufferConfig.model_validate(upgrade({"buffer": flat})["buffer"]).controller.swap_test == mode
    with pytest.raises(ValueError):
        BufferConfig.from_values(dict(controller="llm", swap_test="sometimes"))


def test_a_backend_without_logprobs_falls_back_counted(tmp_path):
    script = tmp_path / "answers.jsonl"
    script.write_text(json.dumps(REPLACE) + "\n")
    ctl = LLMController(AgentConfig(model=f"scripted:{script}", swap_test="on"))
    ctl.setup(FACTS)
    outcome = ctl.decide(request(9, *CONTESTED))
    assert (outcome.source, outcome.valid) == ("fallback", False)
    assert "no log-probabilities" in outcome.reason


def test_ollama_cannot_run_the_swap_test_and_says_what_can():
    cfg = BufferConfig.from_values(dict(controller="llm", model="ollama:gemma3:4b", swap_test="on"))
    with pytest.raises(SettingError, match=r"openai:gemma3:4b@http://HOST:11434/v1"):
        LLMController.preflight(cfg.controller)
