"""The floors under an epoch on the emulated network: what it could take at best, and how far above that it is.

- link floor: the busiest direction of the busiest machine link, in bytes per epoch (``link_bytes_per_epoch``),
  over the link's rate (``link_rate_bytes_s``): every link is shaped to the rate in each direction, so no epoch
  moves its bytes faster than its busiest link direction carries them.
- compute floor: the same variant's epoch time on loopback, where it does the same work with no link to wait for
  (None without such a run).
- bound: the larger of the floors that are known; ratio: the epoch time over it (1.0 = at the floor).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rudder_agent.errors import RudderError
from rudder_agent.records.run_summary import RunSummary

TC_RATE = re.compile(r"(\d+(?:\.\d+)?)(?:([kmgt])(i)?)?(bit|bps)", re.IGNORECASE)
"""A rate as `tc` reads it: a number, an optional SI prefix (k, m, g, t: powers of 1000) or IEC prefix (ki, mi,
gi, ti: powers of 1024), then ``bit`` (bits per second) or ``bps`` (bytes per second), any case: 1gbit, 200mbit,
12.5mbps, 1gibit."""


def rate_bytes_per_s(rate: str | None) -> float:
    """Bytes per second of a `tc` rate (``200mbit`` -> 25e6, ``1gbit`` -> 125e6, ``12.5mbps`` -> 12.5e6); a rate
    that is not one, or not positive, is refused."""
    match = TC_RATE.fullmatch(rate.strip()) if rate else None
    if match is None or float(match[1]) <= 0:
        raise RudderError(f"{rate!r} is not a rate tc understands, e.g. 1gbit or 200mbit (a positive number, then "
                          "bit or bps, with k, m, g or t, or ki, mi, gi or ti, between)")
    number, prefix, binary, unit = match.groups()
    power = "kmgt".index(prefix.lower()) + 1 if prefix else 0
    return float(number) * (1024 if binary else 1000) ** power / (8 if unit.lower() == "bit" else 1)


@dataclass(frozen=True)
class Floors:
    """One run's epoch against its floors, in seconds (None where unknown)."""

    epoch_s: float | None
    link_s: float | None
    compute_s: float | None

    @property
    def bound_s(self) -> float | None:
        """The larger of the known floors: the epoch can beat neither."""
        known = [f for f in (self.link_s, self.compute_s) if f is not None]
        return max(known) if known else None

    @property
    def ratio(self) -> float | None:
        """Epoch time over the larger floor (None without an epoch time or a floor)."""
        bound = self.bound_s
        return self.epoch_s / bound if self.epoch_s is not None and bound else None


def floors(run: RunSummary, loopback: RunSummary | None = None) -> Floors:
    """The floors of ``run``: its link floor (None without link bytes or a link rate) and, given the same variant's
    run on loopback, its compute floor (that run's epoch time)."""
    if loopback is not None and loopback.network not in (None, "loopback"):
        raise RudderError(f"a compute floor is a run on loopback, not on {loopback.network}")
    link = (run.link_bytes_per_epoch / run.link_rate_bytes_s
            if run.link_bytes_per_epoch is not None and run.link_rate_bytes_s else None)
    return Floors(epoch_s=run.epoch_time_s, link_s=link,
                  compute_s=loopback.epoch_time_s if loopback is not None else None)
