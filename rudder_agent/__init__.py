"""Rudder: persistent remote-feature buffers for DistDGL, steered by an LLM agent."""

__version__ = "0.1.0"
