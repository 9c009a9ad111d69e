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

from rudder_agent.paths import PROJECT_ROOT
from tests.unit.test_decision_graph import STUDIO_ROUTE, studio_input

pytestmark = pytest.mark.integration

SESSION = Path(__file__).with_name("studio_session.py")
OFFLINE = {"LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGGRAPH_NO_VERSION_CHECK": "true", "LANGSMITH_TRACING": "false",
           "LANGCHAIN_TRACING_V2": "false"}
"""The switches README gives for running `langgraph dev` without a network."""
ANSWER = {"decision": "skip", "hits": "unchanged", "comm": "unchanged", "reason": "scripted answer for Studio"}


def isolated_network() -> list[str]:
    """A command prefix that runs in a new network namespace with only loopback up; [] where that is not possible."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        return []
    probe = subprocess.run(["unshare", "--net", "ip", "link", "set", "lo", "up"], capture_output=True)
    return ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" "$@"'] if probe.returncode == 0 else []


def test_langgraph_dev_runs_the_decision_graph_offline(tmp_path: Path) -> None:
    answers, request = tmp_path / "answers.jsonl", tmp_path / "request.json"
    answers.write_text(json.dumps(ANSWER) + "\n")
    request.write_text(json.dumps(studio_input()))  # a full buffer with stale entries: the model decides
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
    assert result["state"]["route"] == STUDIO_ROUTE and outcome["route"] == STUDIO_ROUTE  # the path Studio shows
    assert result["exit_code"] == 0 and result["port_free"], log
    assert "Traceback" not in log
    print(f"\nstudio: started in {result['startup_s']:.1f} s, network namespace: {bool(prefix)}")
