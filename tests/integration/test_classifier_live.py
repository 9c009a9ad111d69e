"""A trained classifier steering real DistDGL training, and the same model in `rudder replay`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.helpers import rudder, train

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model(tmp_path_factory, isolated_cache) -> tuple[Path, Path]:
    """A fixed-controller trace of the tiny setup and a classifier trained on it."""
    root = tmp_path_factory.mktemp("classifier-live")
    trace = train(root / "trace", "--epochs", "4", "--controller", "fixed", "--trace", "--trace-only")
    path = root / "lr.rcls"
    proc = rudder("classifiers", "train", str(trace), "--model", "lr", "--horizon", "4", "--out", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return trace, path


def test_live_run_with_the_classifier_serves_exact_rows(tmp_path, model):
    _, path = model
    run = train(tmp_path / "live", "--epochs", "3", "--controller", "classifier", "--classifier-path", str(path),
                "--verify")
    s = json.loads((run / "summary.json").read_text())
    assert s["controller"] == "classifier"
    decided = s["decisions"]["replace"] + s["decisions"]["skip"]
    assert decided > 0 and s["decisions"]["invalid"] == s["decisions"]["guarded"] == 0
    # one request per minibatch; each is answered or dropped, except at most one still pending per trainer at the end
    assert s["requests"] == s["minibatches"]
    assert s["requests"] - 2 <= decided + s["dropped_requests"] <= s["requests"]
    assert sum(s["applied"].values()) <= decided and s["latency_p50_s"] is not None
    assert s["verified_rows"] == s["input_nodes"] > 0


def test_replay_with_the_classifier(tmp_path, model):
    trace, path = model
    out = tmp_path / "replay"
    proc = rudder("replay", str(trace), "--controller", "classifier", "--classifier-path", str(path), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["controller"] == "classifier" and s["requests"] > 0


def test_a_run_without_a_model_is_refused(tmp_path, isolated_cache):
    proc = rudder("train", "--dataset", "synthetic:4000", "--parts", "2", "--batch-size", "300", "--epochs", "1",
                  "--controller", "classifier", "--out", str(tmp_path / "x"))
    assert proc.returncode != 0 and "--classifier-path" in proc.stdout + proc.stderr
