"""The `classifier` controller: a trained model answers each request from the latest window of metrics.

Stateless per decision as in the paper (no decision history reaches the model): the
features are the last ``window`` minibatches of the stream, whatever the request's own
window holds. Optional online fine-tuning (paper §4.4) refits only the decision head every
``finetune_every`` decisions, on the most recent replacements labelled by the same rule as
offline training, which is computable online: the stream shows each replacement's effect.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from pathlib import Path

import numpy as np
from scipy.special import expit

from rudder_agent.classifiers.artifact import Classifier, load_classifier
from rudder_agent.classifiers.features import window_features
from rudder_agent.classifiers.labels import Spread, rule_events, rule_example, rule_labels
from rudder_agent.controllers.base import Controller
from rudder_agent.decision import DecisionOutcome, DecisionRequest
from rudder_agent.errors import RudderError, SettingError
from rudder_agent.log import get_logger
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.settings.controllers import ClassifierSettings

FINETUNE_EVENTS = 64
"""Replacements the head is refitted on (the most recent ones)."""

log = get_logger(__name__)

NO_ARTEFACT = ("the classifier controller needs a trained model: pass --classifier-path "
               "(train one with `rudder classifiers train`)")


def cannot_finetune(classifier: Classifier) -> str:
    """Why a classifier trained on labels other than the rule's cannot be fine-tuned online."""
    return (f"online fine-tuning labels replacements with the paper's rule, but this {classifier.meta.kind} was "
            f"trained on {classifier.meta.labels} labels, which cannot be computed during training: train it with "
            "--labels rule, or do not fine-tune")


class ClassifierController(Controller):
    """Replace iff the classifier's logit on the latest window is positive."""

    name = "classifier"

    def __init__(self, classifier: Classifier, finetune_every: int = 0):
        if finetune_every and classifier.meta.labels != "rule":
            raise RudderError(cannot_finetune(classifier))
        self.classifier = dataclasses.replace(classifier)  # fine-tuning swaps the head of this copy only
        self.finetune_every = finetune_every
        self.window = classifier.meta.window
        self._stream: deque[MinibatchMetrics] = deque(maxlen=2 * self.window)
        self._events: deque[tuple[np.ndarray, tuple[float, float]]] = deque(maxlen=FINETUNE_EVENTS)
        self._spread = Spread()
        self.decisions = 0
        self.finetunes = 0

    @classmethod
    def from_settings(cls, settings: ClassifierSettings) -> Controller:
        return cls.from_path(settings.classifier_path, settings.finetune_every)

    @classmethod
    def from_path(cls, path: Path | None, finetune_every: int = 0) -> ClassifierController:
        """The controller for a saved artefact (``--classifier-path``)."""
        if path is None:
            raise RudderError(NO_ARTEFACT)
        return cls(load_classifier(path), finetune_every)

    @classmethod
    def preflight(cls, settings: ClassifierSettings) -> None:
        """The artefact is given, is a rudder classifier of this feature schema, loads, and fine-tunes if asked."""
        if settings.classifier_path is None:
            raise SettingError("classifier_path", NO_ARTEFACT)
        try:
            classifier = load_classifier(settings.classifier_path)
        except RudderError as err:
            raise SettingError("classifier_path", str(err)) from None
        if settings.finetune_every and classifier.meta.labels != "rule":
            raise SettingError("finetune_every", cannot_finetune(classifier))

    def decide(self, request: DecisionRequest) -> DecisionOutcome:
        tic = time.perf_counter()
        for metrics in request.window:
            self._observe(metrics)
        recent = list(self._stream)[-self.window:]
        step = recent[-1].step + 1 if recent else request.step
        logit = float(self.classifier.logits(window_features(self.facts, recent, step))[0])
        self.decisions += 1
        if self.finetune_every and self.decisions % self.finetune_every == 0 and self._events:
            self._finetune()
        replace = logit > 0
        return DecisionOutcome(
            request_step=request.step, decision="replace" if replace else "skip", source="model",
            expected_hits="increase" if replace else "unchanged", expected_comm="increase" if replace else "unchanged",
            reason=f"{self.classifier.meta.kind} p(replace)={expit(logit):.2f}",
            latency_s=time.perf_counter() - tic,
        )

    def _observe(self, metrics: MinibatchMetrics) -> None:
        """Extend the stream; when fine-tuning, keep every replacement whose after-window is now complete."""
        self._stream.append(metrics)
        if not self.finetune_every:
            return
        stream = list(self._stream)
        for i in rule_events(stream, self.window):
            x, effect = rule_example(self.facts, stream, i, self.window)
            self._events.append((x, effect))
            self._spread.add(np.array(effect))

    def _finetune(self) -> None:
        """Refit the head on the recent replacements, labelled with the rule scaled over the whole run so far."""
        X = np.stack([x for x, _ in self._events])
        y = rule_labels(np.array([e for _, e in self._events]), scale=self._spread.sd)
        self.classifier.head = self.classifier.head.refit(self.classifier.body.embed(X), y)
        self.finetunes += 1
        log.debug("classifier_finetuned", decisions=self.decisions, events=len(X), replace_share=float(y.mean()))
