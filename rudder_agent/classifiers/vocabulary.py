"""Names shared by the CLI, training, artefacts and the controller; importable without heavy libraries."""

from __future__ import annotations

from typing import Literal

ModelKind = Literal["mlp", "lr", "rf", "svm", "xgb", "tabnet"]
MODEL_KINDS: tuple[str, ...] = ("mlp", "lr", "rf", "svm", "xgb", "tabnet")
LabelKind = Literal["oracle", "rule"]
LABEL_KINDS: tuple[str, ...] = ("oracle", "rule")
DEFAULT_WINDOW = 4
"""Minibatches per feature row (and on each side of a replacement for the rule label)."""
DEFAULT_EXPLORE: tuple[float, ...] = (0.1, 0.5)
"""Replace probabilities of the random-behaviour replays added to each training trace."""
