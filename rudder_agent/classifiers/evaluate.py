"""How good a classifier is: accuracy against oracle labels, on recorded states and in closed-loop replay.

Closed-loop figures come from replaying each traced rank with the controller deciding, with
an oracle label judged on every state it actually faced (``replay(label_horizon=H)``):
accuracy is the share of applied decisions that match the oracle's label for the minibatch
they were applied to; %-Hits and comm rows are the replay's; the comm ratio is to ``none``,
whose comm rows are the trace's remote inputs; the replacement interval is the shared one
(``summary.replacement_interval``: minibatches between applied decisions).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from rudder_agent.classifiers.artifact import Classifier
from rudder_agent.classifiers.controller import ClassifierController
from rudder_agent.classifiers.dataset import TraceStream, build_dataset, load_streams, training_set
from rudder_agent.classifiers.train import scores, train_classifier
from rudder_agent.classifiers.vocabulary import LabelKind
from rudder_agent.controllers.base import Controller
from rudder_agent.decision import DEFAULT_HORIZON
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.records.summary import replacement_interval
from rudder_agent.records.trace import recorded_ranks
from rudder_agent.replay.oracle import Oracle
from rudder_agent.replay.recording import load_recording
from rudder_agent.replay.simulator import replay


def static_scores(classifier: Classifier, traces: Sequence[TraceStream]) -> dict:
    """The classifier's answers on the recorded runs' states against the oracle's labels there."""
    data = build_dataset(traces, "oracle", classifier.meta.window)
    return scores(data.y, classifier.predict(data.X))


def closed_loop(make: Callable[[], Controller | str], run_dir: Path, horizon: int = DEFAULT_HORIZON) -> dict:
    """Replay every traced rank of ``run_dir`` with a fresh controller from ``make``; figures pooled over ranks."""
    minibatches: list[MinibatchMetrics] = []
    labels: dict[tuple[int, int], str] = {}
    warm_rows = 0

    def collect(record, kind: str) -> None:
        if kind == "minibatch":
            minibatches.append(record)
        elif kind == "oracle":
            labels[(record["rank"], record["step"])] = record["label"]

    for rank in recorded_ranks(Path(run_dir)):
        record = replay(load_recording(Path(run_dir), rank), make(), collect, label_horizon=horizon, progress=False)
        warm_rows += record["warm_rows"]
    applied = [m for m in minibatches if m.decision_applied]
    agrees = [m.decision_applied == labels[m.rank, m.step] for m in applied]
    remote = sum(m.remote_inputs for m in minibatches)
    comm = sum(m.comm_rows for m in minibatches) + warm_rows
    return {
        "minibatches": len(minibatches),
        "accuracy": float(np.mean(agrees)) if applied else None,
        "hit_pct": 100.0 * sum(m.hits for m in minibatches) / remote if remote else 0.0,
        "comm_rows": comm,
        "comm_ratio": comm / remote if remote else 0.0,
        "replacement_interval": replacement_interval(minibatches),
        "replace_share": float(np.mean([m.decision_applied == "replace" for m in applied])) if applied else None,
        "oracle_replace_share": float(np.mean([labels[m.rank, m.step] == "replace" for m in minibatches]))
        if minibatches else None,
    }


def _agent(model: str) -> Controller:
    """The Rudder LLM agent on ``model`` (imported late: it pulls in LangGraph)."""
    from rudder_agent.settings.agent import AgentConfig
    from rudder_agent.agent.controller import LLMController

    return LLMController(AgentConfig(model=model))


def ood(train_runs: Sequence[Path], test_runs: Sequence[Path], kinds: Sequence[str], labels: LabelKind,
        window: int, horizon: int = DEFAULT_HORIZON, explore: Sequence[float] = (), finetune_every: int = 0,
        seed: int = 0, agents: Sequence[str] = ()) -> list[dict]:
    """Train each kind on ``train_runs``; replay each test run with it, fixed, the oracle and each LLM agent
    (model strings in ``agents``; the agent needs no training); one row per pair.

    ``none`` needs no replay: its comm rows are the remote inputs, the ratio's denominator.
    """
    data = training_set(train_runs, labels, window, horizon, explore, seed)
    classifiers = {k: train_classifier(data, k, labels, window, horizon, seed) for k in kinds}
    seen = {Path(r).resolve() for r in train_runs}
    rows = []
    for run in test_runs:
        base = {"test": Path(run).name, "seen": Path(run).resolve() in seen}
        static = load_streams([run], horizon)
        references = {"fixed": lambda: "fixed", "oracle": lambda: Oracle(horizon)}
        references |= {f"llm ({m})": partial(_agent, m) for m in agents}
        for name, make in references.items():
            rows.append({**base, "controller": name, **closed_loop(make, run, horizon)})
        for kind, clf in classifiers.items():
            figures = closed_loop(partial(ClassifierController, clf, finetune_every), run, horizon)
            rows.append({**base, "controller": kind, **figures,
                         "static_accuracy": static_scores(clf, static)["accuracy"]})
    return rows
