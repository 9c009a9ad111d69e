"""Persistent remote-feature buffer, its scoring policy and the DistDGL-free minibatch engine.

Import from the modules (``rudder_agent.buffer.engine``, ``.persistent``, ``.policy``): the settings read
``policy`` alone, without loading the Numba kernels of the others.
"""
