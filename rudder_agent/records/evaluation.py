"""The evaluation record (kind=eval): accuracies after training, written once per trainer."""

from __future__ import annotations

from pydantic import BaseModel


class EvalRecord(BaseModel):
    """Validation and test accuracy of the trained model, and the majority-class baseline's test accuracy."""

    rank: int
    val_acc: float | None = None
    test_acc: float | None = None
    majority_test_acc: float | None = None
