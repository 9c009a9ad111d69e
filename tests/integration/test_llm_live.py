"""The `llm` controller steering real DistDGL training with scripted answers: plumbing, exact counts.

The asynchronous run with the real model is test_llm_async_live.py; Ctrl-C with the model server up,
test_launcher_failures.py."""

from __future__ import annotations

import json

import pytest

from tests.integration.helpers import minibatches
from tests.integration.llm_fixtures import controller_record, model_calls

pytestmark = pytest.mark.integration

CYCLE = [("model", "replace"), ("fallback", "skip"), ("model", "skip")]
"""What the session's scripted answers (reference.SCRIPT) become, in order: valid, invalid (the skip fallback),
valid."""


def test_scripted_agent_sync_applies_every_answer(reference) -> None:
    run = reference("llm-scripted-sync")
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
