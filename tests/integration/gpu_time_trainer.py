"""The built-in trainer (rudder_agent.cluster.trainer), each optimiser step followed by a sleep: GPU time, emulated.

Rudder's asynchronous agent thinks while the accelerator trains. On a small CPU-only machine the
tiny test graph's training instead keeps every core busy, and the model server (nice 19 by
design: training first) gets no CPU: measured on 2 cores, one decision in 80 s of training.
Sleeping here stands for the GPU's share of a step; everything else is the built-in trainer.
Started by `rudder train --trainer <this file>`; the sleep is $RUDDER_TEST_STEP_SLEEP_S seconds.
"""

from __future__ import annotations

from rudder_agent.cluster import isolation

isolation.apply()  # before DGL starts any role, as the built-in trainer does

import os  # noqa: E402
import runpy  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

SLEEP_ENV = "RUDDER_TEST_STEP_SLEEP_S"
_step = torch.optim.Adam.step


def step(self, *args, **kwargs):
    out = _step(self, *args, **kwargs)
    time.sleep(float(os.environ.get(SLEEP_ENV, "0.25")))
    return out


if __name__ == "__main__":
    torch.optim.Adam.step = step
    runpy.run_module("rudder_agent.cluster.trainer", run_name="__main__", alter_sys=True)
