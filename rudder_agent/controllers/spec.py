"""What a controller declares about itself, read by the registry, the launcher, the channels and the step."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ControllerSpec:
    """What a controller is, as the registry, the launcher, the channels and the step need to know it."""

    uses_buffer: bool = True
    """False: DistDGL as shipped, no buffer at all."""
    inline: bool = False
    """Cheap and deterministic: asked by the prefetcher itself before every minibatch."""
    warm_starts: bool = False
    """``warm_start`` loads rows before training (MassiveGNN); the paper's buffer starts empty."""
    sees_ahead: bool = False
    """Requests should bring minibatches sampled ahead (the LLM agent's What-if plays them)."""
    replaces_between_answers: bool = False
    """Minibatches without a fresh answer replace when replacing fetches nothing (lfu, lookahead).

    An asynchronous controller slower than the trainer answers a few minibatches in many; under a
    keep policy whose re-ranking is free, those minibatches keep re-ranking instead of freezing.
    """
    thread_nice: int = 0
    """Nice value of the deciding thread in asynchronous mode (0: the trainer's priority)."""
    duty_cycle: float = 1.0
    """Asynchronous mode: the largest share of one CPU the deciding thread may use; it rests in between (1: never)."""
