"""A slow call on a thread of its own, so requests a controller settles quickly never wait behind it.

Asynchronous mode only, owned by the deciding thread (:class:`rudder_agent.controllers.runner.ControllerRunner`).
A controller whose answers may take long (the agent's model) hands the slow part of a request
here (:meth:`LateAnswers.ask`) and leaves the request unanswered; the deciding thread takes the
answer when it is ready (:meth:`LateAnswers.take`), read by the controller's own reading. At most
one call is in flight: a controller asking while one runs or its answer waits is refused, and its
request goes unanswered (busy). The call's thread is started by the deciding thread, so it shares
that thread's CPU priority.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from rudder_agent.decision import DecisionOutcome, DecisionRequest


@dataclass
class Call:
    """One slow call: the request it answers, the work (blocking) and how its result becomes an answer."""

    request: DecisionRequest
    work: Callable[[], Any]
    """Runs on the call's thread; it must not raise (a failure is part of its result)."""
    read: Callable[[Any], DecisionOutcome]
    """Runs on the deciding thread when the answer is taken."""
    result: Any = None


class LateAnswers:
    """At most one slow call in flight, on a daemon thread; ``notify`` is called when its result is ready."""

    def __init__(self, notify: Callable[[], None]):
        self.notify = notify
        self._call: Call | None = None
        self._done = threading.Event()

    @property
    def free(self) -> bool:
        """No call in flight and no answer waiting: a slow call may start."""
        return self._call is None

    def ask(self, request: DecisionRequest, work: Callable[[], Any], read: Callable[[Any], DecisionOutcome]) -> bool:
        """Start ``work()`` on a thread of its own to answer ``request``; False while another call is not taken."""
        if not self.free:
            return False
        self._call = call = Call(request, work, read)
        threading.Thread(target=self._run, args=(call,), name="rudder-model", daemon=True).start()
        return True

    def take(self) -> tuple[DecisionRequest, DecisionOutcome] | None:
        """The finished call's request and answer (read now), once; None while it runs or when none was asked."""
        if not self._done.is_set():
            return None
        call, self._call = self._call, None
        self._done.clear()
        return call.request, call.read(call.result)

    def _run(self, call: Call) -> None:
        call.result = call.work()
        self._done.set()
        self.notify()
