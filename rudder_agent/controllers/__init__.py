"""Controllers decide WHEN the buffer replaces stale entries; `rudder_agent.registry` names them."""

from rudder_agent.controllers.base import Controller

__all__ = ["Controller"]
