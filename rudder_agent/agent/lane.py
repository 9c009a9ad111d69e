"""The model asked on a thread of its own, so requests the guard or the what-if settle never wait behind it.

Asynchronous mode only. The controller's thread runs the graph for every request; when a choice
needs the model, the graph's Hand-off node gives the request to this lane and the request is
answered later (:meth:`ModelLane.take`). A contested request that comes while the model still
answers an earlier one is not answered at all (the model decides every contested choice or none;
the guard does not stand in for it). On a starved host this keeps the what-if's quick answers
flowing while one slow model call runs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from rudder_agent.agent.state import AgentState


@dataclass
class Asked:
    """One consultation of the model: the graph state it was asked from, and what the consultation returned."""

    state: AgentState
    consult: Callable[[AgentState], dict[str, Any]]
    """The graph's Ask Model node (blocking; it turns any failure into a fault): run on the lane's thread."""
    conclude: Callable[[Asked, list], tuple]
    """The graph's reading of the reply: run by the controller when it takes the answer."""
    answer: dict[str, Any] | None = None
    """``consult``'s state update (the reply, or the fault), once it returned."""


class ModelLane:
    """At most one model call in flight, on a daemon thread; ``notify`` is called when its answer is ready."""

    def __init__(self, notify: Callable[[], None]):
        self.notify = notify
        self._asked: Asked | None = None
        self._done = threading.Event()

    @property
    def free(self) -> bool:
        """No call in flight and no answer waiting: the model may be asked."""
        return self._asked is None

    @property
    def ready(self) -> bool:
        """An answer waits to be taken."""
        return self._done.is_set()

    def ask(self, state: AgentState, consult: Callable[[AgentState], dict[str, Any]],
            conclude: Callable[[Asked, list], tuple]) -> bool:
        """Start ``consult(state)`` on the lane's thread; False when the model still answers (or its answer waits)."""
        if not self.free:
            return False
        self._asked = asked = Asked(state, consult, conclude)
        threading.Thread(target=self._call, args=(asked,), name="rudder-model", daemon=True).start()
        return True

    def take(self) -> Asked | None:
        """The finished call, once (None while it runs or when nothing was asked)."""
        if not self._done.is_set():
            return None
        asked, self._asked = self._asked, None
        self._done.clear()
        return asked

    def _call(self, asked: Asked) -> None:
        asked.answer = asked.consult(asked.state)
        self._done.set()
        self.notify()
