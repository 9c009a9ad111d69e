"""Runs as Python starts a trainer that `rudder train --trainer SCRIPT` launched (this folder is first on its
PYTHONPATH): the run's isolation is in place before the script imports DGL, so the script calls plain
``dgl.distributed.initialize``. The ``sitecustomize`` this one shadows, if any, then runs as it would have."""

import importlib.machinery
import importlib.util
import os
import sys


def _run_shadowed() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    path = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is not None and spec.loader is not None:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


if os.environ.get("RUDDER_SHM_PREFIX"):  # set by the launcher for every role of a run
    from rudder_agent.cluster.trainer_env import prepare

    prepare()
_run_shadowed()
