"""The model asked on a thread of its own, so requests the guard or the what-if settle never wait behind it.

Asynchronous mode only. The controller's thread runs the graph for every request; when a choice
needs the model, the Decision Maker hands the prompt to this lane and the request is answered
later (:meth:`ModelLane.take`). A contested request that comes while the model still answers an
earlier one is not answered at all (the model decides every contested choice or none; the guard
does not stand in for it). On a starved host this keeps the what-if's quick answers flowing:
before, one slow model call held every later request until it returned.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from rudder_agent.agent.state import AgentState


@dataclass
class Asked:
    """One consultation of the model: the graph state it was asked from, and the reply or the error it ended with."""

    state: AgentState
    consult: Callable[[AgentState], Any]
    """The Decision Maker's consultation of the model (blocking): run on the lane's thread."""
    conclude: Callable[[Asked, list], tuple]
    """The Decision Maker's check of the reply: run by the controller when it takes the answer."""
    reply: Any = None
    error: Exception | None = None
    seconds: float = 0.0


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

    def ask(self, state: AgentState, consult: Callable[[AgentState], Any],
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
        tic = time.perf_counter()
        try:
            asked.reply = asked.consult(asked.state)
        except Exception as err:  # reported as a counted fallback when taken, like a synchronous failure
            asked.error = err
        asked.seconds = time.perf_counter() - tic
        self._done.set()
        self.notify()
