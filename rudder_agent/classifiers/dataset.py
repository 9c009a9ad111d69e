"""Labelled examples from recorded runs: one row per decision point of every traced rank."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rudder_agent.classifiers.explore import RandomBehaviour
from rudder_agent.classifiers.features import FEATURE_NAMES, window_features
from rudder_agent.classifiers.labels import rule_events, rule_example, rule_labels
from rudder_agent.classifiers.vocabulary import LabelKind
from rudder_agent.decision import Action, StaticFacts
from rudder_agent.errors import RudderError
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.records.trace import recorded_ranks
from rudder_agent.replay.recording import load_recording
from rudder_agent.replay.simulator import replay


@dataclass(frozen=True)
class TraceStream:
    """One traced rank as a classifier sees it: facts, metric stream and (optionally) oracle labels."""

    name: str
    facts: StaticFacts
    stream: list[MinibatchMetrics]
    oracle: dict[int, Action] = field(default_factory=dict)


@dataclass(frozen=True)
class Dataset:
    """Feature rows, 0/1 labels (1 = replace) and the trace each row came from."""

    X: np.ndarray
    y: np.ndarray
    groups: list[str]


def load_stream(run_dir: Path, rank: int, horizon: int | None = None, explore: float | None = None,
                seed: int = 0) -> TraceStream:
    """Replay one rank with its recorded decisions (or random ones, replacing with probability ``explore``).

    The recorded decisions reproduce the live metric stream exactly; ``horizon`` adds an oracle label per minibatch.
    """
    recording = load_recording(Path(run_dir), rank)
    stream: list[MinibatchMetrics] = []
    oracle: dict[int, Action] = {}

    def collect(record, kind: str) -> None:
        if kind == "minibatch":
            stream.append(record)
        elif kind == "oracle":
            oracle[record["step"]] = record["label"]

    behaviour = "recorded" if explore is None else RandomBehaviour(explore, [seed, rank, round(explore * 1e6)])
    replay(recording, behaviour, collect, label_horizon=horizon, progress=False)
    name = f"{run_dir}#{rank}" + ("" if explore is None else f"@explore{explore:g}")
    return TraceStream(name, recording.meta.facts, stream, oracle)


def load_streams(run_dirs: Sequence[Path], horizon: int | None = None,
                 explore: Sequence[float] = (), seed: int = 0) -> list[TraceStream]:
    """Every traced rank of every run: as recorded, and once per random behaviour in ``explore``."""
    return [load_stream(Path(d), r, horizon, p, seed) for d in run_dirs for r in recorded_ranks(Path(d))
            for p in (None, *explore)]


def oracle_rows(trace: TraceStream, window: int) -> tuple[np.ndarray, np.ndarray]:
    """One row per minibatch: features from the ``window`` minibatches before it, the oracle's label for it."""
    if not trace.oracle:
        raise RudderError(f"{trace.name} was loaded without oracle labels")
    X = [window_features(trace.facts, trace.stream[max(0, i - window):i], m.step) for i, m in enumerate(trace.stream)]
    y = [trace.oracle[m.step] == "replace" for m in trace.stream]
    return np.stack(X), np.array(y, dtype=np.int64)


def rule_rows(trace: TraceStream, window: int) -> tuple[np.ndarray, np.ndarray]:
    """One row per replacement in the stream with full windows around it, labelled by the paper's rule."""
    examples = [rule_example(trace.facts, trace.stream, i, window) for i in rule_events(trace.stream, window)]
    if not examples:
        return np.empty((0, len(FEATURE_NAMES))), np.empty(0, dtype=np.int64)
    X = np.stack([x for x, _ in examples])
    return X, rule_labels(np.array([e for _, e in examples]))


def build_dataset(traces: Sequence[TraceStream], labels: LabelKind, window: int) -> Dataset:
    """Rows of every trace, labelled by ``labels``; refuses a dataset with no rows."""
    parts = [(t.name, *(oracle_rows(t, window) if labels == "oracle" else rule_rows(t, window)))
             for t in traces]
    X = np.concatenate([x for _, x, _ in parts]) if parts else np.empty((0, len(FEATURE_NAMES)))
    if not len(X):
        raise RudderError("the traces hold no labelled decision points: record longer runs, or with --labels rule "
                          f"runs whose controller replaced at least once with {window} minibatches around it")
    return Dataset(X, np.concatenate([y for _, _, y in parts]).astype(np.int64),
                   [name for name, x, _ in parts for _ in range(len(x))])


def training_set(run_dirs: Sequence[Path], labels: LabelKind, window: int, horizon: int,
                 explore: Sequence[float] = (), seed: int = 0) -> Dataset:
    """Recorded and explored replays of ``run_dirs``, labelled (the costly oracle is judged only when asked for)."""
    traces = load_streams(run_dirs, horizon if labels == "oracle" else None, explore, seed)
    return build_dataset(traces, labels, window)

