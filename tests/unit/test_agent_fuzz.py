"""Hundreds of broken answers through the real controller: zero crashes, all counted invalid."""

from __future__ import annotations

import json
import random
import string
from collections import Counter

import pytest

from rudder_agent.settings.agent import AgentConfig
from rudder_agent.agent.controller import LLMController
from rudder_agent.agent.nodes import collect_metrics
from rudder_agent.agent.state import AgentState, HistoryEntry
from rudder_agent.decision import DecisionRequest, StaticFacts
from rudder_agent.llm.output import REASON_MAX_CHARS, REASONING_MAX_CHARS
from rudder_agent.metrics import MinibatchMetrics

FACTS = StaticFacts(dataset="ogbn-products", num_nodes=2_449_029, num_edges=61_859_140, num_parts=4, partition=3,
                    local_nodes=600_000, halo_nodes=350_000, capacity=17_500, total_minibatches=100_000,
                    feature_dim=100)
GOOD = {"decision": "replace", "hits": "increase", "comm": "increase", "reason": "stale entries, falling hits"}
GOOD_COT = {"reasoning": "hits fell 10 points and 40 entries are stale", **GOOD}
FREE_TEXT = {"reason", "reasoning"}
WRONG_VALUES = [None, 0, 1.5, -3, True, [], {}, ["replace"], {"v": "replace"}, "", "REPLACE", "evict", "yes", "0.0000"]


def malformed_answers(rng: random.Random, n: int, base: dict) -> list[str]:
    """Answers no valid decision can be read from, across every way a model goes wrong."""
    good = json.dumps(base)

    def truncated() -> str:
        return good[: rng.randrange(0, len(good) - 1)]

    def wrong_type() -> str:
        key = rng.choice(list(base))
        values = [v for v in WRONG_VALUES if not isinstance(v, str)] if key in FREE_TEXT else WRONG_VALUES
        return json.dumps({**base, key: rng.choice(values)})

    def missing_keys() -> str:
        keep = rng.sample(list(base), rng.randrange(0, len(base)))
        return json.dumps({k: base[k] for k in keep})

    def extra_key() -> str:
        return json.dumps({**base, rng.choice(["confidence", "hit_rate", "Decision", "Reason"]): "high"})

    def long_reason() -> str:
        key = rng.choice(sorted(FREE_TEXT & set(base)))
        limit = REASON_MAX_CHARS if key == "reason" else REASONING_MAX_CHARS
        return json.dumps({**base, key: "x" * rng.randrange(limit + 1, 4 * limit)})

    def noise() -> str:
        alphabet = string.printable.replace("{", "") + "äß中🙂\x00\x1b"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 400)))

    def empty() -> str:
        return rng.choice(["", " ", "\n", "```json\n```", "{}", "null", "[]", '""', "```"])

    def non_object_json() -> str:
        return json.dumps(rng.choice([["replace", "increase"], "replace", 42, None, True]))

    def nested_garbage() -> str:
        depth = rng.randrange(1, 3000)
        return "{" + '"a":' + "[" * depth

    def numbers_until_limit() -> str:
        return '{"decision": "replace", "hits": 0.' + "0" * rng.randrange(10, 2000)

    def prose() -> str:
        return rng.choice(["I think you should replace the buffer.", "Decision: skip", "yes", "replace"])

    kinds = [truncated, wrong_type, missing_keys, extra_key, long_reason, noise, empty, non_object_json,
             nested_garbage, numbers_until_limit, prose]
    return [rng.choice(kinds)() for _ in range(n)]


def windows(rng: random.Random, count: int):
    step = 0
    for _ in range(count):
        size = rng.randrange(1, 6)
        batches = []
        for _ in range(size):
            remote = rng.randrange(0, 500)
            hits = rng.randrange(0, remote + 1)
            replace = rng.choice([0, 0, rng.randrange(0, 1000)])
            batches.append(MinibatchMetrics(
                rank=3, epoch=0, step=step, input_nodes=remote * 3 + 1, remote_inputs=remote, hits=hits,
                misses=remote - hits, replace_rows=replace, comm_rows=remote - hits + replace,
                comm_bytes=400 * (remote - hits)))
            step += 1
        yield DecisionRequest(step=step - 1, window=batches, stale=rng.randrange(1, 200),
                              occupancy=rng.randrange(0, 17_501), capacity=17_500)


@pytest.mark.parametrize("policy,cot", [("skip", False), ("rule", True)])
def test_malformed_answers_never_crash_and_all_count_invalid(tmp_path, policy, cot):
    rng = random.Random(20240607)
    answers = malformed_answers(rng, 400, GOOD_COT if cot else GOOD)
    script = tmp_path / "answers.jsonl"
    script.write_text("\n".join(json.dumps(a) for a in answers) + "\n")
    ctl = LLMController(AgentConfig(model=f"scripted:{script}", fallback=policy, cot=cot, guard=False))
    ctl.setup(FACTS)
    requests = list(windows(rng, len(answers)))
    outcomes = [ctl.decide(req) for req in requests]
    ctl.close()
    assert len(outcomes) == len(answers)
    assert all(o.source == "fallback" and not o.valid for o in outcomes)
    assert all(o.expected_hits is None and o.expected_comm is None for o in outcomes)
    if policy == "skip":
        assert Counter(o.decision for o in outcomes) == {"skip": len(answers)}
    else:  # the rule, applied to each window as the Metrics Collector summarised it
        expected = [rule(w) for w in summarised(requests)]
        assert [o.decision for o in outcomes] == expected
        assert set(expected) == {"replace", "skip"}  # both branches of the rule were taken
    assert len(ctl.history) == 5


def rule(window) -> str:
    """The documented `rule` fallback, written out: replace when a slot is replaceable (stale or empty)
    and %-Hits is falling or below 50 (the default low_hit_pct)."""
    replaceable = window.stale > 0 or window.occupancy < window.capacity
    return "replace" if replaceable and (window.trend == "falling" or window.hit_pct < 50.0) else "skip"


def summarised(requests: list[DecisionRequest]) -> list:
    """Each request's window as the Metrics Collector sees it: after the previous request's window."""
    out, history = [], []
    for req in requests:
        window = collect_metrics(AgentState(facts=FACTS, request=req, history=history))["window"]
        out.append(window)
        history = [HistoryEntry(step=req.step, window=window, decision="skip", source="fallback")]
    return out


@pytest.mark.parametrize("cot", [False, True])
def test_control_well_formed_answers_in_any_wrapper_are_valid(tmp_path, cot):
    """The fuzz above is meaningful only if the same path accepts every good answer."""
    rng = random.Random(7)
    base = json.dumps(GOOD_COT if cot else GOOD)
    wrappers = ["{}", "```json\n{}\n```", "Answer: {} Done.", "{}\n{{\"decision\": \"skip\"}}", "\n\n{}\n"]
    answers = [rng.choice(wrappers).replace("{}", base, 1) for _ in range(50)]
    script = tmp_path / "answers.jsonl"
    script.write_text("\n".join(json.dumps(a) for a in answers) + "\n")
    ctl = LLMController(AgentConfig(model=f"scripted:{script}", cot=cot, guard=False))
    ctl.setup(FACTS)
    outcomes = [ctl.decide(req) for req in windows(rng, len(answers))]
    assert all(o.source == "model" and o.valid and o.decision == "replace" for o in outcomes)
