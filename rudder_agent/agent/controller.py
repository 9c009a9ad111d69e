"""The `llm` controller: the Rudder agent behind the common Controller interface."""

from __future__ import annotations

import time
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph.state import CompiledStateGraph

from rudder_agent.settings.agent import AgentConfig
from rudder_agent.agent.context import HandOff
from rudder_agent.agent.graph import build_graph
from rudder_agent.agent.prompts import PromptSet, PromptTemplateError, system_values
from rudder_agent.agent.state import AgentState, HistoryEntry
from rudder_agent.controllers.base import Controller
from rudder_agent.controllers.capabilities import Place, SharedRuntime
from rudder_agent.controllers.late import LateAnswers
from rudder_agent.controllers.spec import ControllerSpec
from rudder_agent.decision import DecisionOutcome, DecisionRequest, StaticFacts, Unanswered
from rudder_agent.errors import SettingError
from rudder_agent.llm.backends import ChatBackend, answer_model, make_chat_model
from rudder_agent.llm.embedded import shared_server
from rudder_agent.llm.errors import BackendError
from rudder_agent.log import get_logger

log = get_logger(__name__)


def make_backend(config: AgentConfig) -> ChatBackend:
    """The chat backend a config names, constrained to its answer schema (not started yet)."""
    return make_chat_model(config.model, config.backend_options())


class LLMController(Controller):
    """Runs the decision graph once per request and carries the decision history between them."""

    name = "llm"

    def __init__(self, config: AgentConfig | None = None):
        self.config = config or AgentConfig()
        self.spec = ControllerSpec(
            sees_ahead=self.config.whatif,  # the What-if node plays the window sampled ahead; the paper's agent, none
            thread_nice=19,  # what-if play and prompts run on CPU time training leaves idle (async never waits)
            replaces_between_answers=True,  # a slow model must not freeze a look-ahead buffer between its answers
            duty_cycle=self.config.duty_cycle)
        self.prompts = PromptSet.load(self.config.prompts_dir, self.config.prompt_version)
        self.backend: ChatBackend | None = None
        self.graph: CompiledStateGraph | None = None
        self.history: list[HistoryEntry] = []

    @classmethod
    def from_settings(cls, settings: AgentConfig) -> Controller:
        return cls(settings)

    @classmethod
    def preflight(cls, config: AgentConfig) -> None:
        """The prompt version's templates load and check; the model string parses, its files exist, and a
        remote model server answers and has the model (a short timeout). No model server is started."""
        try:
            PromptSet.load(config.prompts_dir, config.prompt_version)
        except PromptTemplateError as err:
            raise SettingError("prompt_version", str(err)) from None
        try:
            backend = make_backend(config)
            try:
                backend.preflight()
            finally:
                backend.close()
        except BackendError as err:
            raise SettingError("model", str(err)) from None

    @classmethod
    def shared_runtime(cls, config: AgentConfig, *, seed: int, parallel: int, host: str, nice: int,
                       place: Place | None = None) -> SharedRuntime | None:
        """One embedded model server per machine for `llamacpp:` models (one slot per trainer)."""
        return shared_server(config.model, n_threads=config.n_threads, seed=seed, parallel=parallel, host=host,
                             nice=nice, place=place)

    def setup(self, facts: StaticFacts) -> None:
        """Build and check the backend, then the graph; any problem raises before training starts."""
        super().setup(facts)
        self.backend = make_backend(self.config)
        try:
            self.backend.check()
        except Exception:
            self.backend.close()
            raise
        self.graph = build_graph(self.backend, self.prompts, self.config)
        if self.config.warm_up and self.backend.caches_prompts:
            self._warm_up()
        log.info("llm_controller_ready", prompts=str(self.prompts.system.path.parent), **self.run_record())

    def _warm_up(self) -> None:
        """One call with the run's static system prompt, so the runtime caches that prefix before training.

        A cold ~750-token prompt is the slow part of a small local model's first answers; the
        same prefix starts every later prompt, so they only process the per-request part.
        """
        schema = answer_model(self.config.model, self.config.cot)
        system = self.prompts.system.render(system_values(self.facts, schema, self.config.guard_end_fraction))
        tic = time.perf_counter()
        try:
            self.backend.invoke([SystemMessage(system), HumanMessage("Warm-up: answer with any valid decision.")])
        except Exception as err:  # a slow first answer still leaves the prefix cached server-side
            log.warning("llm_warm_up_failed", error=f"{type(err).__name__}: {err}"[:200])
        log.info("llm_warm_up", seconds=round(time.perf_counter() - tic, 2))

    def answer_later(self, late: LateAnswers) -> None:
        """Asynchronous mode: the model answers on ``late``'s thread; what the guard and what-if settle never waits."""
        self.graph = build_graph(self.backend, self.prompts, self.config, HandOff(late, self._read_late))

    def decide(self, request: DecisionRequest) -> DecisionOutcome | Unanswered:
        """One pass through the graph; model failures come back as counted fallback decisions.

        After :meth:`answer_later` a request the model must decide comes back unanswered: ``asked``
        (its answer is read by :meth:`_read_late` when the deciding thread takes it) or ``busy``.
        """
        result = self.graph.invoke(AgentState(facts=self.facts, request=request, history=self.history))
        self.history = result["history"]
        return result["outcome"] or result["model_call"]

    def _read_late(self, answers: CompiledStateGraph, state: AgentState) -> DecisionOutcome:
        """A late reply through the answer path (checked, recorded in the history as it is by now)."""
        result = answers.invoke(state.model_copy(update={"history": self.history}))
        self.history = result["history"]
        return result["outcome"]

    def opening(self, buffer) -> DecisionOutcome | None:
        """An empty buffer is filled from the first minibatch on (the guard's fill rule, before any request)."""
        if self.config.guard and buffer.occupancy == 0:
            return DecisionOutcome(request_step=-1, decision="replace", source="guard",
                                   reason="the buffer starts empty: fill it")
        return None

    def run_record(self) -> dict[str, Any]:
        """What a run summary must record to reproduce this agent's decisions."""
        return {
            "prompt_version": self.prompts.version,
            "prompt_sha256": self.prompts.sha256,
            "model": self.config.model,
            "cot": self.config.cot,
            "swap_test": self.config.swap_test,
            "fallback": self.config.fallback,
            "seed": self.config.seed,
        }

    def close(self) -> None:
        """Stop the backend (and the embedded server, if any)."""
        if self.backend is not None:
            self.backend.close()
