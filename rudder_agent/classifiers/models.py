"""The six model kinds behind one shape: a frozen body that embeds features, and a logistic decision head.

``logit = head(body.embed(X))``, replace iff logit > 0. For the MLP the body is the hidden
layers and the head its final linear layer (trained together, one sigmoid inside
BCEWithLogits, none at inference). For the other kinds the body is the whole fitted
pipeline and ``embed`` its decision score as a logit; the head starts as the identity.
Online fine-tuning refits only the head, so every kind can be fine-tuned the same way.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from scipy.special import expit, logit
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

from rudder_agent.classifiers.vocabulary import MODEL_KINDS
from rudder_agent.errors import RudderError

_LOGIT_CLIP = 1e-4


@dataclass(frozen=True)
class Head:
    """Logistic decision head over the body's embedding: logit = z @ w + b."""

    w: np.ndarray
    b: float

    def logits(self, z: np.ndarray) -> np.ndarray:
        """One logit per embedding row (positive: replace)."""
        return np.asarray(z, dtype=np.float64) @ self.w + self.b

    def refit(self, z: np.ndarray, y: np.ndarray, steps: int = 200, lr: float = 0.1, l2: float = 0.1) -> Head:
        """Class-balanced logistic regression by gradient descent, started at and pulled towards this head."""
        z = np.asarray(z, dtype=np.float64)
        weight = compute_sample_weight("balanced", y) / len(y)
        w, b = self.w.astype(np.float64).copy(), float(self.b)
        for _ in range(steps):
            err = weight * (expit(z @ w + b) - y)
            w -= lr * (z.T @ err + l2 * (w - self.w))
            b -= lr * (err.sum() + l2 * (b - self.b))
        return Head(w, b)


class Body(Protocol):
    """A trained model without its decision head."""

    def fit(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray) -> Head:
        """Train on class-weighted rows; return the decision head that goes with it."""

    def embed(self, X: np.ndarray) -> np.ndarray:
        """The representation the head reads, one row per input row."""


class ScoreBody:
    """A scikit-learn-style pipeline whose decision score (as a logit) is a one-column embedding."""

    def __init__(self, pipeline: Pipeline, weight_param: str, **fit_params: Any):
        self.pipeline, self.weight_param, self.fit_params = pipeline, weight_param, fit_params

    def fit(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray) -> Head:
        with warnings.catch_warnings():  # TabNet warns that it has no validation set to stop early on
            warnings.filterwarnings("ignore", message="No early stopping will be performed")
            self.pipeline.fit(X, y, **{f"clf__{self.weight_param}": weight},
                              **{f"clf__{k}": v for k, v in self.fit_params.items()})
        return Head(np.ones(1), 0.0)

    def embed(self, X: np.ndarray) -> np.ndarray:
        if hasattr(self.pipeline, "decision_function"):
            score = self.pipeline.decision_function(X)
        else:
            score = logit(np.clip(self.pipeline.predict_proba(X)[:, 1], _LOGIT_CLIP, 1 - _LOGIT_CLIP))
        return np.asarray(score, dtype=np.float64).reshape(-1, 1)


class MLPBody:
    """Two ReLU layers in PyTorch; the final linear layer becomes the head."""

    def __init__(self, hidden: int = 32, epochs: int = 300, lr: float = 1e-2, seed: int = 0):
        self.hidden, self.epochs, self.lr, self.seed = hidden, epochs, lr, seed
        self.scaler = StandardScaler()
        self.net = None

    def fit(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray) -> Head:
        import torch

        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            self.net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], self.hidden), torch.nn.ReLU(),
                                           torch.nn.Linear(self.hidden, self.hidden), torch.nn.ReLU())
            last = torch.nn.Linear(self.hidden, 1)
        xt = torch.as_tensor(self.scaler.fit_transform(X), dtype=torch.float32)
        yt = torch.as_tensor(y, dtype=torch.float32)
        wt = torch.as_tensor(weight / weight.sum(), dtype=torch.float32)
        loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
        opt = torch.optim.Adam([*self.net.parameters(), *last.parameters()], lr=self.lr, weight_decay=1e-4)
        for _ in range(self.epochs):
            opt.zero_grad()
            loss = (loss_fn(last(self.net(xt)).squeeze(1), yt) * wt).sum()
            loss.backward()
            opt.step()
        self.net.eval()
        return Head(last.weight.detach().double().numpy().ravel(), float(last.bias.item()))

    def embed(self, X: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.net(torch.as_tensor(self.scaler.transform(X), dtype=torch.float32)).double().numpy()


def tabnet_installed() -> bool:
    """TabNet is an optional dependency."""
    return importlib.util.find_spec("pytorch_tabnet") is not None


def require_tabnet() -> None:
    """Say which package provides TabNet when it is missing."""
    if not tabnet_installed():
        raise RudderError("--model tabnet needs the optional package pytorch-tabnet "
                          "(pip install --no-deps pytorch-tabnet==4.1.0); the other kinds work without it")


def make_body(kind: str, seed: int = 0) -> Body:
    """An untrained body of ``kind``; class imbalance is handled by the sample weights given to ``fit``."""
    scaled = lambda clf: Pipeline([("scale", StandardScaler()), ("clf", clf)])  # noqa: E731
    if kind == "mlp":
        return MLPBody(seed=seed)
    if kind == "lr":
        from sklearn.linear_model import LogisticRegression

        return ScoreBody(scaled(LogisticRegression(max_iter=1000)), "sample_weight")
    if kind == "rf":
        from sklearn.ensemble import RandomForestClassifier

        return ScoreBody(scaled(RandomForestClassifier(n_estimators=100, min_samples_leaf=3, n_jobs=1,
                                                       random_state=seed)), "sample_weight")
    if kind == "svm":
        from sklearn.svm import LinearSVC

        return ScoreBody(scaled(LinearSVC(C=1.0, random_state=seed)), "sample_weight")
    if kind == "xgb":
        from xgboost import XGBClassifier

        return ScoreBody(scaled(XGBClassifier(n_estimators=100, max_depth=3, learning_rate=0.1, n_jobs=1,
                                              random_state=seed)), "sample_weight")
    if kind == "tabnet":
        require_tabnet()
        from pytorch_tabnet.tab_model import TabNetClassifier

        tabnet = TabNetClassifier(n_d=8, n_a=8, n_steps=3, seed=seed, verbose=0, device_name="cpu")
        return ScoreBody(scaled(tabnet), "weights", max_epochs=50, patience=0, batch_size=256,
                         virtual_batch_size=64, drop_last=False, compute_importance=False)
    raise RudderError(f"unknown model kind {kind!r}: choose one of {', '.join(MODEL_KINDS)}")
