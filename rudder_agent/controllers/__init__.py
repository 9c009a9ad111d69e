"""Controllers decide WHEN the buffer replaces stale entries; `make_controller` picks one by name."""

from __future__ import annotations

from rudder_agent.config import BufferConfig
from rudder_agent.controllers.base import Controller
from rudder_agent.controllers.baselines import MassiveGNN, NoBuffer, ReplaceEveryMinibatch
from rudder_agent.errors import RudderError


def make_controller(cfg: BufferConfig) -> Controller:
    """The controller named by ``cfg.controller``, configured from ``cfg``."""
    if cfg.controller == "none":
        return NoBuffer()
    if cfg.controller == "fixed":
        return ReplaceEveryMinibatch()
    if cfg.controller == "massivegnn":
        return MassiveGNN(cfg.period)
    if cfg.controller == "llm":
        from rudder_agent.agent.controller import LLMController
        from rudder_agent.agent.configuration import AgentConfig

        return LLMController(AgentConfig(model=cfg.model, prompt_version=cfg.prompt_version, cot=cfg.cot,
                                         fallback=cfg.fallback, n_threads=cfg.llm_threads,
                                         timeout_s=cfg.llm_timeout_s))
    if cfg.controller == "classifier":
        from rudder_agent.classifiers.controller import ClassifierController

        return ClassifierController.from_path(cfg.classifier_path, cfg.finetune_every)
    raise RudderError(f"controller {cfg.controller!r} is not available yet")


__all__ = ["Controller", "make_controller"]
