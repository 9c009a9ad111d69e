"""A trained classifier steering real DistDGL training, and the same model in `rudder replay`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rudder_agent.records.stream import read_jsonl
from tests.integration.helpers import minibatches, rudder, train
from tests.integration.reference import BUFFER

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model(tmp_path_factory, reference) -> tuple[Path, Path]:
    """The session's trace-only run of the tiny setup and a classifier trained on it."""
    trace = reference("fixed-decay-trace-only")
    path = tmp_path_factory.mktemp("classifier-live") / "lr.rcls"
    proc = rudder("classifiers", "train", str(trace), "--model", "lr", "--horizon", "4", "--out", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return trace, path


def test_live_run_with_the_classifier_serves_exact_rows(tmp_path, model):
    """Synchronous: every minibatch asks, every request is answered by the classifier and applied to the next one."""
    _, path = model
    run = train(tmp_path / "live", "--epochs", "2", *BUFFER, "--policy", "decay", "--controller", "classifier",
                "--classifier-path", str(path), "--sync", "--verify")
    s = json.loads((run / "summary.json").read_text())
    assert s["controller"] == "classifier"
    assert s["verified_rows"] == s["input_nodes"] == sum(m["input_nodes"] for r in (0, 1) for m in minibatches(run, r))
    for rank in (0, 1):
        (record,) = read_jsonl(run / f"metrics-rank{rank}.jsonl", kind="controller")
        mbs = minibatches(run, rank)
        d = record["decisions"]
        assert record["requests"] == len(mbs) and record["dropped"] == 0
        assert d.get("invalid", 0) == d.get("guarded", 0) == 0
        assert d.get("replace", 0) + d.get("skip", 0) == len(mbs) == len(record["latencies_s"])
        # the answer to minibatch k is applied at minibatch k+1; the last one has nothing left to apply to
        applied = [m["decision_applied"] for m in mbs if m["decision_source"] == "model"]
        assert len(applied) == len(mbs) - 1
        assert applied.count("replace") in (d.get("replace", 0), d.get("replace", 0) - 1)
    assert s["requests"] == s["minibatches"] == sum(len(minibatches(run, r)) for r in (0, 1))
    assert s["decisions"]["replace"] + s["decisions"]["skip"] == s["minibatches"]


def test_replay_with_the_classifier(tmp_path, model):
    """Every traced rank replayed synchronously: one answer per recorded minibatch."""
    trace, path = model
    out = tmp_path / "replay"
    proc = rudder("replay", str(trace), "--controller", "classifier", "--classifier-path", str(path), "--mode", "sync",
                  "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    s = json.loads((out / "summary.json").read_text())
    recorded = sum(len(minibatches(trace, rank)) for rank in (0, 1))
    assert s["controller"] == "classifier" and s["minibatches"] == s["requests"] == recorded
    assert s["decisions"]["replace"] + s["decisions"]["skip"] == recorded and s["decisions"]["invalid"] == 0
    assert s["dropped_requests"] == 0
