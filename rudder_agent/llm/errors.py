"""The one error a backend raises when it cannot be built or reached, before training starts."""


class BackendError(RuntimeError):
    """A model string that is malformed, names a missing file, or points at an unreachable server."""
