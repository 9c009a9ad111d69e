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
from typing import TYPE_CHECKING, Callable

from langchain_core.messages import BaseMessage

if TYPE_CHECKING:
    from rudder_agent.agent.nodes import ChatModel, DecisionMaker
    from rudder_agent.agent.state import AgentState


@dataclass
class Asked:
    """One model call: the graph state it was asked from, and the answer text or the error it ended with."""

    state: AgentState
    maker: DecisionMaker
    text: str | None = None
    error: Exception | None = None
    seconds: float = 0.0


class ModelLane:
    """At most one model call in flight, on a daemon thread; ``notify`` is called when its answer is ready."""

    def __init__(self, chat: ChatModel, notify: Callable[[], None]):
        self.chat, self.notify = chat, notify
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

    def ask(self, state: AgentState, maker: DecisionMaker, messages: list[BaseMessage]) -> bool:
        """Start a call; False when the model still answers (or its answer waits to be taken)."""
        if not self.free:
            return False
        self._asked = asked = Asked(state, maker)
        threading.Thread(target=self._call, args=(asked, messages), name="rudder-model", daemon=True).start()
        return True

    def take(self) -> Asked | None:
        """The finished call, once (None while it runs or when nothing was asked)."""
        if not self._done.is_set():
            return None
        asked, self._asked = self._asked, None
        self._done.clear()
        return asked

    def _call(self, asked: Asked, messages: list[BaseMessage]) -> None:
        tic = time.perf_counter()
        try:
            asked.text = self.chat.invoke(messages).text
        except Exception as err:  # reported as a counted fallback when taken, like a synchronous failure
            asked.error = err
        asked.seconds = time.perf_counter() - tic
        self._done.set()
        self.notify()
