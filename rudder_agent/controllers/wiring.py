"""Which channel a controller's answers take to the buffer, chosen from its spec."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rudder_agent.controllers.base import Controller
from rudder_agent.controllers.capabilities import Opens, OwnsChannel
from rudder_agent.controllers.channel import ClockedChannel, DecisionChannel, InlineChannel
from rudder_agent.controllers.runner import ControllerRunner
from rudder_agent.decision import LooksAhead

if TYPE_CHECKING:
    from rudder_agent.buffer.persistent import PersistentBuffer


def open_channel(controller: Controller, buffer: PersistentBuffer, mode: str, outlook: LooksAhead | None = None,
                 latency: int | None = None) -> DecisionChannel:
    """How answers reach the buffer: inline, a thread (live, ``latency`` None) or replay's minibatch clock.

    ``outlook``: what requests carry to play answers forward (the step's view ahead).
    """
    if isinstance(controller, OwnsChannel):
        return controller.open_channel(buffer, mode, outlook, latency)
    if controller.spec.inline:
        return InlineChannel(controller, buffer)
    answers = {"opening": controller.opening(buffer) if isinstance(controller, Opens) else None, "outlook": outlook,
               "replaces_between_answers": controller.spec.replaces_between_answers}
    if latency is None:
        return ControllerRunner(controller, mode, **answers)
    return ClockedChannel(controller, 1 if mode == "sync" else latency, mode, **answers)
