"""Saved classifiers (``.rcls``): a zip of meta.json, head.json and the pickled body.

meta.json carries the model kind, the label kind, the feature schema (ordered names and
version), the feature window and the training record; it is read and checked before the
body is unpickled, so an artefact built for other features is refused with the differences
named instead of silently mis-reading its inputs.
"""

from __future__ import annotations

import json
import pickle
import platform
import zipfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from rudder_agent.classifiers.features import CURRENT_SCHEMA, FeatureSchema
from rudder_agent.classifiers.models import Body, Head, require_tabnet
from rudder_agent.classifiers.vocabulary import LabelKind, ModelKind
from rudder_agent.errors import RudderError

FORMAT = "rudder-classifier"
FORMAT_VERSION = 1
_PACKAGES = ("rudder-agent", "numpy", "scikit-learn", "xgboost", "torch", "pytorch-tabnet")


class ArtifactMeta(BaseModel):
    """Everything about a trained classifier except its weights."""

    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    kind: ModelKind
    labels: LabelKind
    features: FeatureSchema
    window: int = Field(ge=1, description="minibatches summarised into one feature row")
    horizon: int | None = Field(None, description="oracle labels: look-ahead in minibatches")
    training: dict = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)


@dataclass
class Classifier:
    """A trained body and its decision head; replace iff the head's logit is positive."""

    meta: ArtifactMeta
    body: Body
    head: Head

    def logits(self, X: np.ndarray) -> np.ndarray:
        return self.head.logits(self.body.embed(np.atleast_2d(X)))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """1 (replace) or 0 (skip) per row."""
        return (self.logits(X) > 0).astype(np.int64)


def installed_versions() -> dict[str, str]:
    """Versions that decide whether the pickled body can be read back."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def save_classifier(classifier: Classifier, path: Path) -> Path:
    """Write ``path`` (a zip); returns it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = classifier.meta.model_copy(update={"versions": installed_versions()})
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("meta.json", meta.model_dump_json(indent=2))
        zf.writestr("head.json", json.dumps({"w": classifier.head.w.tolist(), "b": classifier.head.b}))
        zf.writestr("body.pkl", pickle.dumps(classifier.body))
    return path


def read_meta(path: Path) -> ArtifactMeta:
    """The artefact's meta.json, checked against this version's format and feature schema."""
    try:
        with zipfile.ZipFile(path) as zf:
            meta = ArtifactMeta.model_validate_json(zf.read("meta.json"))
    except (OSError, KeyError, zipfile.BadZipFile, ValidationError) as exc:
        raise RudderError(f"{path} is not a rudder classifier artefact ({type(exc).__name__}: {exc}); "
                          "train one with `rudder classifiers train`") from None
    if meta.format != FORMAT or meta.format_version != FORMAT_VERSION:
        raise RudderError(f"{path} is format {meta.format} v{meta.format_version}; this rudder reads "
                          f"{FORMAT} v{FORMAT_VERSION}: retrain it with `rudder classifiers train`")
    diff = meta.features.differences(CURRENT_SCHEMA)
    if diff:
        raise RudderError(f"{path} was trained on feature schema v{meta.features.version}, which does not match "
                          f"this rudder's v{CURRENT_SCHEMA.version}: {'; '.join(diff)}. "
                          "Retrain it with `rudder classifiers train`")
    return meta


def load_classifier(path: Path) -> Classifier:
    """Read an artefact; refuses one whose format or feature schema differs from this version's."""
    path = Path(path)
    meta = read_meta(path)
    if meta.kind == "tabnet":
        require_tabnet()
    with zipfile.ZipFile(path) as zf:
        head = json.loads(zf.read("head.json"))
        try:
            body = pickle.loads(zf.read("body.pkl"))
        except Exception as exc:  # a pickle from other library versions fails in many ways
            raise RudderError(f"cannot read the model in {path} ({type(exc).__name__}: {exc}); it was saved with "
                              f"{meta.versions}, retrain it with the installed versions") from None
    return Classifier(meta, body, Head(np.asarray(head["w"], dtype=np.float64), float(head["b"])))
