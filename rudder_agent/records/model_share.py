"""Who decided: how often the model was asked and answered, and which source each applied decision came from.

An agent run on busy cores can show a decision count with no model answer in it: the guard, the what-if's
no-difference rule, idle re-ranking or a fallback decided instead. This record says so in every table.

- ``asked``: requests the model was called on. Asynchronously every call first leaves its request unanswered
  (``asked``) and its answer, when it comes, is counted with the decisions; synchronously the call answers at once.
- ``answered``: calls that came back before the run ended, valid or not; ``valid`` of them matched the schema.
- ``decided``: minibatches whose applied decision came from each source (model, guard, no-difference, idle,
  fallback, rule). ``idle`` is the look-ahead policy re-ranking while no answer is pending: nobody's decision.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, Field

from rudder_agent.metrics import MinibatchMetrics

SOURCES = ("model", "guard", "no-difference", "idle", "fallback", "rule")
"""Where an applied decision came from, in the order the tables list them."""


class ModelShare(BaseModel):
    """The model's part in a run's decisions (see the module docstring)."""

    requests: int = 0
    asked: int = 0
    answered: int = 0
    valid: int = 0
    decided: dict[str, int] = Field(default_factory=dict, description="applied decisions by source, in SOURCES order")

    @classmethod
    def of(cls, requests: int, decisions: Mapping[str, int], unanswered: Mapping[str, int],
           applied_sources: Iterable[str]) -> ModelShare:
        """From a run's (or a rank's) counts: decisions by kind, unanswered by reason, and each applied
        decision's source."""
        valid = decisions.get("replace", 0) + decisions.get("skip", 0)
        answered = valid + decisions.get("invalid", 0)
        sources = Counter(applied_sources)
        return cls(requests=requests, asked=max(unanswered.get("asked", 0), answered), answered=answered,
                   valid=valid, decided={s: sources.get(s, 0) for s in SOURCES})

    @classmethod
    def from_records(cls, controllers: Iterable[Mapping], minibatches: Iterable[MinibatchMetrics]) -> ModelShare:
        """From the kind=controller records and minibatch records of a run (or of one rank)."""
        controllers = list(controllers)
        return cls.of(int(sum(c.get("requests", 0) for c in controllers)),
                      sum((Counter(c.get("decisions", {})) for c in controllers), Counter()),
                      sum((Counter(c.get("unanswered", {})) for c in controllers), Counter()),
                      (m.decision_source for m in minibatches if m.decision_applied))

    def asked_answered(self) -> str:
        """'asked/answered', e.g. '63/0'."""
        return f"{self.asked}/{self.answered}"

    def decided_by(self) -> str:
        """Applied decisions per source, in SOURCES order: 'model/guard/no-diff/idle/fallback/rule'."""
        return "/".join(str(self.decided.get(s, 0)) for s in SOURCES)

    def sentence(self) -> str:
        """One line for the end of a run."""
        by = ", ".join(f"{s} {n}" for s, n in self.decided.items() if n) or "none"
        return (f"the model: asked on {self.asked} of {self.requests} requests, answered {self.answered} "
                f"({self.valid} valid); decided by: {by}")
