"""Supervised training of one model kind on a labelled dataset, with a stratified held-out check."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_sample_weight

from rudder_agent.classifiers.artifact import ArtifactMeta, Classifier
from rudder_agent.classifiers.dataset import Dataset
from rudder_agent.classifiers.features import CURRENT_SCHEMA
from rudder_agent.classifiers.models import make_body
from rudder_agent.classifiers.vocabulary import LabelKind
from rudder_agent.errors import RudderError

VALIDATION_FRACTION = 0.2


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Tiny torch models (MLP, TabNet) train faster on one thread, and 10x faster than on busy shared cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def scores(y: np.ndarray, predicted: np.ndarray) -> dict:
    """Accuracy, balanced accuracy and both replace shares of a set of predictions."""
    return {"n": len(y), "accuracy": float(accuracy_score(y, predicted)),
            "balanced_accuracy": float(balanced_accuracy_score(y, predicted)) if len(set(y)) > 1 else None,
            "replace_share": float(np.mean(y)), "predicted_replace_share": float(np.mean(predicted))}


def train_classifier(data: Dataset, kind: str, labels: LabelKind, window: int, horizon: int,
                     seed: int = 0) -> Classifier:
    """Fit ``kind`` on a stratified 80% of ``data`` with balanced class weights; score it on the rest."""
    counts = np.bincount(data.y, minlength=2)
    if counts.min() == 0:
        raise RudderError(f"every {labels} label in these traces is {'replace' if counts[1] else 'skip'}: "
                          "a classifier needs both classes; add traces from other configurations")
    stratify = data.y if counts.min() >= 2 else None
    X_fit, X_val, y_fit, y_val = train_test_split(data.X, data.y, test_size=VALIDATION_FRACTION, random_state=seed,
                                                  stratify=stratify)
    if len(set(y_fit)) < 2:
        raise RudderError(f"too few {labels} labels of one class ({counts.min()}) to train on; add traces")
    body = make_body(kind, seed)
    with one_torch_thread():
        head = body.fit(X_fit, y_fit, compute_sample_weight("balanced", y_fit))
    meta = ArtifactMeta(kind=kind, labels=labels, features=CURRENT_SCHEMA, window=window,
                        horizon=horizon if labels == "oracle" else None,
                        training={"traces": sorted(set(data.groups)), "rows": len(data.y), "seed": seed,
                                  "replace_share": float(np.mean(data.y))})
    classifier = Classifier(meta, body, head)
    meta.training["validation"] = scores(y_val, classifier.predict(X_val))
    return classifier
