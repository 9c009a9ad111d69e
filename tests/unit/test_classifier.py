"""Classifier data path: features, both labelings, datasets, every model kind, artefacts and their schema check."""

from __future__ import annotations

import importlib.util
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rudder_agent.agent.nodes import collect_metrics
from rudder_agent.agent.state import AgentState
from rudder_agent.classifiers.artifact import load_classifier, save_classifier
from rudder_agent.classifiers.dataset import build_dataset, load_streams
from rudder_agent.classifiers.features import CURRENT_SCHEMA, FEATURE_NAMES, window_features
from rudder_agent.classifiers.labels import rule_events, rule_example, rule_labels
from rudder_agent.classifiers.models import Head, make_body
from rudder_agent.classifiers.train import train_classifier
from rudder_agent.decision import DecisionRequest, StaticFacts
from rudder_agent.errors import RudderError
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.records.stream import MetricsWriter
from rudder_agent.replay.recording import load_recording
from rudder_agent.replay.simulator import replay
from tests.unit.test_replay import make_run

FACTS = StaticFacts(dataset="synthetic:200", num_nodes=200, num_edges=1000, num_parts=2, partition=0, local_nodes=100,
                    halo_nodes=40, capacity=10, total_minibatches=20, feature_dim=4)
TABNET = importlib.util.find_spec("pytorch_tabnet") is not None


def mb(step: int, hits: int, comm: int, remote: int = 100, applied: str | None = "replace") -> MinibatchMetrics:
    """A minibatch record with ``hits`` of ``remote`` remote inputs and ``comm`` rows fetched."""
    return MinibatchMetrics(rank=0, epoch=0, step=step, input_nodes=2 * remote, remote_inputs=remote, hits=hits,
                            misses=remote - hits, replace_rows=comm - (remote - hits), comm_rows=comm,
                            comm_bytes=16 * comm, stale=3, occupancy=10, capacity=10, decision_applied=applied)


def drifting_inputs(n: int, seed: int = 0) -> list[list[int]]:
    """Minibatches whose remote ids (100..199) drift slowly, so a buffer pays off and timing matters."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        remote = 100 + (i * 4 + rng.integers(0, 30, size=25)) % 100
        out.append(sorted({*rng.choice(100, size=15, replace=False).tolist(), *remote.tolist()}))
    return out


def recorded_run(path: Path, n: int = 40, seed: int = 0) -> Path:
    """A hand-made run recorded with the fixed controller (trace, meta and its metric stream)."""
    run = make_run(path, drifting_inputs(n, seed), halo=40, per_epoch=10)
    writer = MetricsWriter(run / "metrics-rank0.jsonl")
    replay(load_recording(run, 0), "fixed", writer.write, progress=False)
    writer.close()
    return run


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return recorded_run(tmp_path_factory.mktemp("cls") / "run")


@pytest.fixture(scope="module")
def traces(run):
    return load_streams([run], horizon=4, explore=(0.1, 0.5))


def test_features_follow_the_schema_and_the_agents_window_summary():
    stream = [mb(0, 10, 90), mb(1, 30, 70), mb(2, 50, 60)]
    x = window_features(FACTS, stream, step=3)
    assert x.shape == (len(FEATURE_NAMES),) and list(FEATURE_NAMES) == CURRENT_SCHEMA.names
    request = DecisionRequest(step=3, window=stream, stale=3, occupancy=10, capacity=10)
    agent = collect_metrics(AgentState(facts=FACTS, request=request))["window"]
    f = dict(zip(FEATURE_NAMES, x))
    assert f["hit_pct"] == pytest.approx(agent.hit_pct) == pytest.approx(30.0)
    assert f["hit_trend_pp"] == pytest.approx(agent.hit_trend_pp)
    assert f["log_comm_per_mb"] == pytest.approx(np.log1p(agent.comm_per_mb))
    assert f["progress"] == pytest.approx(3 / 20) and f["occupancy_pct"] == 100.0
    assert np.isfinite(window_features(FACTS, [], step=0)).all()


def test_rule_events_need_full_windows_on_both_sides():
    stream = [mb(i, 10, 90, applied="replace" if i in (1, 4, 6) else "skip") for i in range(8)]
    assert rule_events(stream, 2) == [4, 6]
    assert rule_events(stream, 4) == [4]
    assert rule_events(stream, 5) == []


def test_rule_effect_is_the_context_builders_change_between_windows():
    stream = [mb(0, 10, 90), mb(1, 20, 80), mb(2, 60, 70), mb(3, 80, 50)]
    x, (dh, dc) = rule_example(FACTS, stream, 2, 2)
    assert dh == pytest.approx(70 - 15) and dc == pytest.approx(60 - 85)
    np.testing.assert_array_equal(x, window_features(FACTS, stream[:2], step=2))


def test_rule_labels_compare_standardized_changes_without_centering():
    effects = np.array([[2.0, 10.0], [-2.0, -10.0], [1.0, 20.0], [0.0, -20.0]])  # sd(dh)=1.58, sd(dc)=15.8
    assert rule_labels(effects).tolist() == [1, 0, 0, 1]
    assert rule_labels(effects, scale=np.array([1.0, 100.0])).tolist() == [1, 0, 1, 1]
    assert rule_labels(np.array([[1.0, 0.0], [1.0, 0.0]])).tolist() == [1, 1]  # constant columns: scale 1


def test_datasets_from_recorded_and_explored_replays(run, traces):
    assert len(traces) == 3 and {len(t.stream) for t in traces} == {40}
    recorded = traces[0]
    assert all(m.decision_applied == "replace" for m in recorded.stream)  # the fixed run, reproduced
    assert any(m.decision_applied == "skip" for m in traces[1].stream)  # a random behaviour
    oracle = build_dataset(traces, "oracle", 4)
    assert oracle.X.shape == (120, len(FEATURE_NAMES)) and set(oracle.y) == {0, 1}
    rule = build_dataset(traces, "rule", 4)
    assert 0 < len(rule.y) < 120 and set(rule.y) <= {0, 1}
    assert len(set(oracle.groups)) == 3


@pytest.mark.parametrize("kind", ["mlp", "lr", "rf", "svm", "xgb",
                                  pytest.param("tabnet", marks=pytest.mark.skipif(
                                      not TABNET, reason="pytorch-tabnet is not installed (optional)"))])
def test_every_kind_trains_saves_and_loads(tmp_path, traces, kind):
    data = build_dataset(traces, "oracle", 4)
    classifier = train_classifier(data, kind, "oracle", 4, 4)
    v = classifier.meta.training["validation"]
    assert v["n"] == 24 and 0.0 <= v["accuracy"] <= 1.0
    path = save_classifier(classifier, tmp_path / f"{kind}.rcls")
    loaded = load_classifier(path)
    assert loaded.meta.kind == kind and loaded.meta.features == CURRENT_SCHEMA and loaded.meta.window == 4
    np.testing.assert_allclose(loaded.logits(data.X), classifier.logits(data.X))
    assert set(loaded.predict(data.X)) <= {0, 1}


def test_tabnet_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RudderError, match="pytorch-tabnet"):
        make_body("tabnet")


def test_a_single_class_cannot_be_trained(traces):
    data = build_dataset(traces, "oracle", 4)
    data.y[:] = 1
    with pytest.raises(RudderError, match="both classes"):
        train_classifier(data, "lr", "oracle", 4, 4)


def test_a_different_feature_schema_is_refused_with_the_differences(tmp_path, traces):
    path = save_classifier(train_classifier(build_dataset(traces, "oracle", 4), "lr", "oracle", 4, 4),
                           tmp_path / "lr.rcls")
    with zipfile.ZipFile(path) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    meta = json.loads(parts["meta.json"])
    meta["features"] = {"version": 0, "names": [n for n in FEATURE_NAMES if n != "progress"] + ["queue_depth"]}
    parts["meta.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, blob in parts.items():
            zf.writestr(name, blob)
    with pytest.raises(RudderError) as err:
        load_classifier(path)
    message = str(err.value)
    assert "schema v0" in message and "'progress'" in message and "'queue_depth'" in message


def test_a_file_that_is_no_artefact_is_refused(tmp_path):
    bad = tmp_path / "x.rcls"
    bad.write_text("not a zip")
    with pytest.raises(RudderError, match="not a rudder classifier artefact"):
        load_classifier(bad)


def test_head_refit_moves_towards_the_new_labels():
    z = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    head = Head(np.array([1.0]), 0.0)
    flipped = head.refit(z, np.array([1, 1, 0, 0]), steps=500, lr=1.0, l2=0.0)
    assert (flipped.logits(z) < head.logits(z))[2:].all() and (flipped.logits(z) > head.logits(z))[:2].all()
    assert head.w.tolist() == [1.0]  # the original is untouched


def test_rule_models_record_no_oracle_horizon(traces):
    classifier = train_classifier(build_dataset(traces, "rule", 2), "lr", "rule", 2, 8)
    assert classifier.meta.horizon is None and classifier.meta.labels == "rule"
