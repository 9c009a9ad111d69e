"""The oracle label record (kind=oracle): the counterfactual judge's verdict at one minibatch."""

from __future__ import annotations

from pydantic import BaseModel

from rudder_agent.decision import Action


class OracleLabel(BaseModel):
    """The oracle's verdict on one decision point."""

    step: int
    horizon: int
    replace_comm: int
    skip_comm: int
    label: Action
