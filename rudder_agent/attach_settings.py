"""What a trainer attached with :class:`rudder_agent.attach.BufferedFeatures` runs with, settled once at the top.

Settings come from the script's keyword arguments, or, when ``rudder train`` started the script, from the run
(its ``config.json``, named in the environment): ``rudder train --controller llm --trainer SCRIPT -- ...`` then
steers the script's buffer although the script reads no file of ours. A script that sets a run setting itself
must agree with the run: otherwise the recorded config would not say what ran, and the script is stopped with
both values named.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from rudder_agent.config import TrainConfig, launched_run
from rudder_agent.errors import RudderError
from rudder_agent.settings.buffer import BufferConfig
from rudder_agent.settings.controllers import ControllerSettings
from rudder_agent.settings.keep import KeepSettings


@dataclass(frozen=True)
class AttachSettings:
    """The settled settings of one attached trainer (see :meth:`resolve`)."""

    buffer: BufferConfig
    rank: int
    trainers_per_machine: int
    verify: bool
    dataset: str
    feat: str
    pull_from: str
    """Where remote rows are read: ``peers`` (peer_rows.py) or ``servers`` (DistDGL's RPC)."""
    seed: int | None
    """Seeds each epoch's shuffle and the sampling thread's generator in ``iterate`` (None: the script's own)."""
    record: bool
    """Write the run's metric stream (and trace) into ``run.out_dir``."""
    run: TrainConfig | None
    """The run ``rudder train`` started this trainer in, if any."""

    @classmethod
    def resolve(cls, *, buffer: BufferConfig | None = None, controller: ControllerSettings | str | None = None,
                policy: KeepSettings | str | None = None, rank: int | None = None,
                trainers_per_machine: int | None = None, verify: bool | None = None, dataset: str | None = None,
                feat: str | None = None, seed: int | None = None, record: bool | None = None,
                pull_from: str | None = None, run: TrainConfig | None | bool = True) -> AttachSettings:
        """Keyword settings first, then the run's (``run=True``: read from the environment), then defaults.

        Raises RudderError for ``buffer`` given with ``controller``/``policy``, and for a setting that differs
        from the run's.
        """
        if buffer is not None and (controller is not None or policy is not None):
            raise RudderError("give the buffer's settings once: buffer=BufferConfig(...), or controller= and "
                              "policy=, not both")
        run = launched_run() if run is True else (run or None)
        if record and run is None:
            raise RudderError("record=True needs the run `rudder train` starts this script in (its run directory); "
                              "outside one, read features.summary() and the metrics fetch returns")
        own = buffer_settings(buffer, controller, policy)
        if run is not None and own is not None and own != run.buffer:
            raise RudderError(f"this script sets the buffer's settings ({changed(own, run.buffer)}) and the run "
                              f"`rudder train` started it in sets {changed(run.buffer, own)}: give them on the "
                              f"`rudder train` command line and leave them out of the script")
        env_rank = int(os.environ["RANK"]) if "RANK" in os.environ else None  # the launcher's, or the launch tool's
        if run is not None:
            agree("trainers_per_machine", trainers_per_machine, run.trainers_per_machine)
            agree("rank", rank, env_rank if env_rank is not None else 0)
        return cls(
            buffer=run.buffer if run is not None else own or BufferConfig(),
            rank=pick(rank, env_rank) if rank is not None or env_rank is not None else torch_rank(),
            trainers_per_machine=pick(trainers_per_machine, run and run.trainers_per_machine,
                                      int(os.environ.get("LOCAL_WORLD_SIZE", 1))),
            verify=pick(verify, run and run.verify, False),
            dataset=pick(dataset, run and run.dataset, "user-graph"),
            feat=pick(feat, run and run.node_data.feat, "feat"),
            seed=pick(seed, run and run.seed, None),
            pull_from=pick(pull_from, run and run.pull_from, "peers"),
            record=pick(record, run is not None, False),
            run=run,
        )


def buffer_settings(buffer: BufferConfig | None, controller: ControllerSettings | str | None,
                    policy: KeepSettings | str | None) -> BufferConfig | None:
    """The buffer settings the keyword arguments give (None: none given); a name picks a variant's defaults."""
    if buffer is not None:
        return buffer
    if controller is None and policy is None:
        return None
    names = {k: v for k, v in (("controller", controller), ("policy", policy)) if isinstance(v, str)}
    typed = {k: v.model_dump() for k, v in (("controller", controller), ("policy", policy))
             if v is not None and not isinstance(v, str)}
    return BufferConfig.model_validate({**BufferConfig.from_values(names).model_dump(), **typed})


def changed(settings: BufferConfig, other: BufferConfig) -> str:
    """``settings``' values that differ from ``other``'s, as ``name=value`` pairs (a variant's own settings go
    with its tag: ``controller=llm`` says them)."""
    mine, theirs = settings.values(), other.values()
    return ", ".join(f"{k}={v}" for k, v in mine.items() if k in theirs and theirs[k] != v)


def agree(name: str, given: Any, run_value: Any) -> None:
    """A setting the script gives must be the run's."""
    if given is not None and given != run_value:
        raise RudderError(f"this script sets {name}={given} and the run `rudder train` started it in has "
                          f"{name}={run_value}: leave it to the run")


def pick(*candidates: Any) -> Any:
    """The first candidate that is not None (``run and x`` is None outside a run)."""
    return next((c for c in candidates if c is not None), candidates[-1])


def torch_rank() -> int:
    """The trainer's rank in the default process group, 0 before one is made."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
