"""The classifier controller: valid outcomes, features independent of request timing, fine-tuning, replay, CLI."""

from __future__ import annotations

import json
import types
import zipfile

import numpy as np
import pytest
from typer.testing import CliRunner

from rudder_agent.classifiers import controller as controller_module
from rudder_agent.classifiers.artifact import load_classifier, save_classifier
from rudder_agent.classifiers.cli import classifiers_app
from rudder_agent.classifiers.controller import ClassifierController
from rudder_agent.classifiers.dataset import build_dataset, load_streams
from rudder_agent.classifiers.features import CURRENT_SCHEMA, FEATURE_NAMES
from rudder_agent.classifiers.train import train_classifier
from rudder_agent.decision import DecisionOutcome, DecisionRequest
from rudder_agent.errors import RudderError
from rudder_agent.replay.simulator import replay_run
from tests.unit.test_classifier import FACTS, mb, recorded_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return recorded_run(tmp_path_factory.mktemp("ctl") / "run")


@pytest.fixture(scope="module")
def traces(run):
    return load_streams([run], horizon=4, explore=(0.1, 0.5))


@pytest.fixture(scope="module")
def oracle_lr(traces):
    return train_classifier(build_dataset(traces, "oracle", 4), "lr", "oracle", 4, 4)


@pytest.fixture(scope="module")
def rule_mlp(traces):
    return train_classifier(build_dataset(traces, "rule", 2), "mlp", "rule", 2, 4)


def controller(classifier, finetune_every: int = 0) -> ClassifierController:
    ctl = ClassifierController(classifier, finetune_every)
    ctl.setup(FACTS)
    return ctl


def stream(n: int) -> list:
    rng = np.random.default_rng(1)
    return [mb(i, int(rng.integers(0, 90)), int(rng.integers(60, 100)), applied=str(rng.choice(["replace", "skip"])))
            for i in range(n)]


def request(step: int, window: list) -> DecisionRequest:
    return DecisionRequest(step=step, window=window, stale=3, occupancy=10, capacity=10)


def test_decide_returns_valid_model_outcomes(oracle_lr, monkeypatch):
    clock = [50.0]  # the controller's clock, advanced only by the model's forward pass
    monkeypatch.setattr(controller_module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    ctl = controller(oracle_lr)
    forward = ctl.classifier.logits

    def timed_logits(X):
        clock[0] += 0.5
        return forward(X)

    ctl.classifier.logits = timed_logits
    outcomes = [ctl.decide(request(0, []))] + [ctl.decide(request(m.step, [m])) for m in stream(12)]
    for o in outcomes:
        assert isinstance(o, DecisionOutcome) and o.valid and o.source == "model"
        assert o.decision in ("replace", "skip") and o.latency_s == 0.5
        assert (o.expected_hits, o.expected_comm) == (("increase", "increase") if o.decision == "replace"
                                                       else ("unchanged", "unchanged"))
        assert o.reason.startswith("lr p(replace)=")


def test_features_do_not_depend_on_how_requests_split_the_stream(oracle_lr):
    s = stream(12)
    one_by_one, batched = controller(oracle_lr), controller(oracle_lr)
    last = [one_by_one.decide(request(m.step, [m])) for m in s][-1]
    batched.decide(request(3, s[:4]))
    again = batched.decide(request(11, s[4:]))
    assert (again.decision, again.reason) == (last.decision, last.reason)


def test_finetuning_refits_only_the_head_on_rule_labelled_replacements(rule_mlp):
    ctl = controller(rule_mlp, finetune_every=3)
    before = rule_mlp.head
    for m in stream(20):
        ctl.decide(request(m.step, [m]))
    assert ctl.finetunes >= 4 and len(ctl._events) > 0
    assert not np.array_equal(ctl.classifier.head.w, before.w)
    assert ctl.classifier.body is rule_mlp.body and rule_mlp.head is before  # the shared model is untouched


def test_finetuning_an_oracle_labelled_model_is_refused(oracle_lr):
    with pytest.raises(RudderError, match="--labels rule"):
        ClassifierController(oracle_lr, finetune_every=5)


def test_a_missing_artefact_path_is_a_clear_error():
    with pytest.raises(RudderError, match="--classifier-path"):
        ClassifierController.from_path(None)


def test_replay_with_the_classifier_in_the_loop(tmp_path, run, oracle_lr):
    summary = replay_run(run, 0, ClassifierController(oracle_lr), mode="async", latency_minibatches=1,
                         out_dir=tmp_path / "out", progress=False, label_horizon=4)
    d = summary.decisions
    assert summary.controller == "classifier" and d["replace"] + d["skip"] == summary.requests == 40
    assert summary.replacement_interval == 1.0


def test_cli_train_evaluate_and_ood(tmp_path, run):
    model = tmp_path / "m.rcls"
    cli = CliRunner()
    result = cli.invoke(classifiers_app, ["train", str(run), "--model", "rf", "--horizon", "4", "--out", str(model)])
    assert result.exit_code == 0, result.output
    assert "rf on 120 oracle-labelled decision points" in result.output and model.exists()
    result = cli.invoke(classifiers_app, ["evaluate", str(model), str(run), "--horizon", "4"])
    assert result.exit_code == 0, result.output
    assert "recorded states: accuracy" in result.output and "closed loop: accuracy" in result.output
    out = tmp_path / "ood.json"
    result = cli.invoke(classifiers_app, ["ood", "--train", str(run), "--test", str(run), "--models", "lr,svm",
                                          "--horizon", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [r["controller"] for r in rows] == ["fixed", "oracle", "lr", "svm"] and all(r["seen"] for r in rows)
    assert rows[1]["accuracy"] == 1.0 and rows[0]["comm_ratio"] <= 1.0
    assert "| run | yes | lr |" in result.output


def test_cli_refuses_unknown_labels(tmp_path, run):
    from rudder_agent.cli import app  # importing the top-level app must leave the sub-app as it is

    args = ["train", str(run), "--labels", "vibes", "--out", str(tmp_path / "m")]
    result = CliRunner().invoke(classifiers_app, args)  # the sub-app alone raises the error ...
    assert isinstance(result.exception, RudderError) and "oracle or rule" in str(result.exception)
    result = CliRunner().invoke(app, ["classifiers", *args])  # ... `rudder classifiers` prints it, exit 1
    assert result.exit_code == 1 and "error: --labels must be oracle or rule, not 'vibes'" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "m").exists()


def test_an_artefact_with_its_features_in_another_order_is_refused(tmp_path, run, oracle_lr):
    # Same schema version, same names, another order: reading it would feed every feature to the wrong weight.
    path = save_classifier(oracle_lr, tmp_path / "lr.rcls")
    assert load_classifier(path).meta.features == CURRENT_SCHEMA  # as saved, it loads
    with zipfile.ZipFile(path) as zf:
        parts = {name: zf.read(name) for name in zf.namelist()}
    meta = json.loads(parts["meta.json"])
    swapped = list(FEATURE_NAMES)
    swapped[0], swapped[1] = swapped[1], swapped[0]  # hit_pct <-> hit_trend_pp
    meta["features"] = {"version": CURRENT_SCHEMA.version, "names": swapped}
    parts["meta.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, blob in parts.items():
            zf.writestr(name, blob)
    expected = f"feature order changed: {swapped} -> {list(FEATURE_NAMES)}"
    with pytest.raises(RudderError) as err:
        ClassifierController.from_path(path)  # what `rudder train --controller classifier` loads
    assert expected in str(err.value) and "Retrain it with `rudder classifiers train`" in str(err.value)
    from rudder_agent.cli import app

    result = CliRunner().invoke(app, ["classifiers", "evaluate", str(path), str(run), "--horizon", "4"])
    assert result.exit_code == 1 and expected in result.output and "recorded states" not in result.output
