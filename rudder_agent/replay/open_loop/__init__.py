"""Open-loop replay of a recorded metric stream: the windows the agent saw, through the decision graph again.

`rudder replay` is closed loop: it re-simulates the buffer from a ``--trace`` recording, so
each decision changes what the next minibatches hit. Open loop needs only the metric
stream (``metrics-rank<r>.jsonl``) that every run writes. Each ``kind=decision`` record
becomes the request the controller answered live (its step, the minibatches of its window,
the buffer's stale/occupancy/capacity and the what-if computed live) and goes through an
:class:`LLMController` with any model, prompt version and chain-of-thought setting, which
carries its history from one request to the next as in a live run. The answers change
nothing: the stream is fixed, so the replay measures decisions, validity, latency and
agreement (with the recorded decisions, the oracle, the what-if), never their effect.

Modules, one job each: ``stream`` (one rank's records), ``windows`` (the requests rebuilt),
``facts`` (the static facts the agent was given), ``labels`` (oracle labels), ``agent`` (the
controller the settings name), ``scoring`` (one row per window and their roll-up), ``run``
(all of it, rank by rank), ``variants`` (several prompt variants in one replay) and ``table`` (the Markdown
tables).
"""

from rudder_agent.replay.open_loop.run import open_loop
from rudder_agent.replay.open_loop.stream import check_run_dir
from rudder_agent.replay.open_loop.table import format_side_by_side, format_table
from rudder_agent.replay.open_loop.variants import prompt_variants

__all__ = ["check_run_dir", "format_side_by_side", "format_table", "open_loop", "prompt_variants"]
