"""LangGraph Studio's server (`langgraph dev`) loads the decision graph named in langgraph.json and runs it.

The session (studio_session.py) starts the server the way the README says, with the scripted model so
no real LLM is needed, runs the graph through the LangGraph SDK and stops the server. As root it runs
inside a new network namespace that has only a loopback interface: the server must work offline
(no analytics, no version check, no LangSmith tracing).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rudder_agent.decision import DecisionRequest, StaticFacts
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.paths import PROJECT_ROOT

pytestmark = pytest.mark.integration

SESSION = Path(__file__).with_name("studio_session.py")
OFFLINE = {"LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGGRAPH_NO_VERSION_CHECK": "true", "LANGSMITH_TRACING": "false",
           "LANGCHAIN_TRACING_V2": "false"}
"""The switches README gives for running `langgraph dev` without a network."""
ANSWER = {"decision": "skip", "hits": "unchanged", "comm": "unchanged", "reason": "scripted answer for Studio"}
FACTS = StaticFacts(dataset="cora", num_nodes=2708, num_edges=10556, num_parts=2, partition=0, local_nodes=1354,
                    halo_nodes=191, capacity=48, total_minibatches=30, feature_dim=1433)


def isolated_network() -> list[str]:
    """A command prefix that runs in a new network namespace with only loopback up; [] where that is not possible."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        return []
    probe = subprocess.run(["unshare", "--net", "ip", "link", "set", "lo", "up"], capture_output=True)
    return ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" "$@"'] if probe.returncode == 0 else []


def test_langgraph_dev_runs_the_decision_graph_offline(tmp_path: Path) -> None:
    answers, request = tmp_path / "answers.jsonl", tmp_path / "request.json"
    answers.write_text(json.dumps(ANSWER) + "\n")
    window = [MinibatchMetrics(rank=0, epoch=0, step=s, input_nodes=900, remote_inputs=300, hits=60, misses=240,
                               comm_rows=240, comm_bytes=240 * 1433 * 4) for s in range(5, 10)]
    # a full buffer with stale entries, a third into training: the guard lets the model decide
    req = DecisionRequest(step=9, window=window, stale=30, occupancy=48, capacity=48)
    request.write_text(json.dumps({"facts": FACTS.model_dump(), "request": req.model_dump()}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH_", "LANGCHAIN_"))}
    env.update(OFFLINE, RUDDER_AGENT_MODEL=f"scripted:{answers}")
    prefix = isolated_network()
    proc = subprocess.run([*prefix, sys.executable, str(SESSION), str(PROJECT_ROOT / "langgraph.json"),
                           str(tmp_path), str(request)], capture_output=True, text=True, env=env, timeout=400)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    log = result["log_tail"]
    assert result["graphs"] == ["rudder_decision"], log
    outcome = result["state"]["outcome"]
    assert outcome["source"] == "model" and outcome["decision"] == "skip", outcome
    assert outcome["reason"] == ANSWER["reason"]  # the scripted model answered, through the graph
    assert result["state"]["window"]["last_step"] == 9 and result["state"]["history"][-1]["step"] == 9
    assert result["exit_code"] == 0 and result["port_free"], log
    assert "Traceback" not in log
    print(f"\nstudio: started in {result['startup_s']:.1f} s, network namespace: {bool(prefix)}")
