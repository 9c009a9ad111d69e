"""Reference runs: each live configuration is trained once per session and read by every test that needs it.

A DistDGL launch costs tens of seconds on a small machine, most of it starting processes. Tests that only
read what a finished run left behind (counts, traces, summaries) share these runs instead of starting a
cluster of their own; tests that disturb a run (Ctrl-C, a killed process, a corrupted row) still start
their own. A reference run that fails, fails every test that asks for it, with the run's output, once.
"""

from __future__ import annotations

import contextlib
import io
import json
from functools import cached_property
from pathlib import Path

from rudder_agent.cluster.netns import availability
from tests.integration.helpers import TINY, rudder
from tests.integration.llm_fixtures import ASKS_THE_MODEL

EXACT = ["--epochs", "3", "--trace", "--verify"]
"""Every reference run is traced (for replay) and verified (every served row checked against the DistTensor)."""
BUFFER = ["--buffer-fraction", "0.25"]
SHAPED = ["--network", "netns", "--link-rate", "200mbit"] if availability() is None else []
DECAY = [*BUFFER, "--controller", "fixed", "--policy", "decay"]
LOOKAHEAD = [*BUFFER, "--controller", "fixed", "--policy", "lookahead", "--lookahead", "3"]

CORA_T2 = ["--dataset", "cora", "--parts", "2", "--trainers-per-machine", "2", "--batch-size", "8", "--epochs", "2",
           "--trace", "--verify"]
"""Two machines x two trainers: cora's 140 training nodes give each trainer 35 seeds, 5 minibatches an epoch."""
T2_DECAY = [*CORA_T2, *DECAY, "--buffer-scope", "trainer"]
"""What the emulated network and the hosts over ssh both run (no rate: the ssh hosts' links are not shaped), each
trainer with its own buffer, so that every minibatch's rows are the same whatever the timing."""
T2_SHARED = [*CORA_T2, *LOOKAHEAD]
"""The default scope: each machine's two trainers share one buffer (the default keep policy, a window of 3)."""

THEIRS = ["--part-config", "{theirs}", "--feat-key", "features", "--label-key", "labels", "--batch-size", "20",
          "--epochs", "2", "--controller", "fixed", "--trace", "--verify"]
"""cora partitioned by dgl.distributed.partition_graph into 2 (no --parts: the partition's); 70 training nodes a
trainer, 4 minibatches an epoch."""
THEIRS_SCRIPT_ARGS = ["--", "--graph_name", "{graph_name}", "--ip_config", "{ip_config}", "--part_config",
                      "{part_config}", "--num_epochs", "{epochs}", "--batch_size", "{batch_size}", "--fan_out",
                      "{fanouts}"]
"""What examples/distdgl_graphsage.py is given by `rudder train --trainer` (its own arguments, DGL's names)."""

REFERENCE: dict[str, list[str]] = {
    # DistDGL as shipped
    "none": [*TINY, *EXACT, "--controller", "none"],
    # the paper's keep policy (no window: the same minibatches and loss as `none`), on the emulated network
    # where this host can make one (root, iproute2): what crosses a machine's link changes nothing else
    "fixed-decay": [*TINY, *EXACT, *DECAY, *SHAPED],
    "massivegnn-decay": [*TINY, *EXACT, *BUFFER, "--controller", "massivegnn", "--policy", "decay", "--period", "4"],
    # fixed-decay recording its trace only: no backward pass, no optimizer step
    "fixed-decay-trace-only": [*TINY, "--epochs", "3", "--trace-only", *DECAY],
    # the default keep policy, with a window of 3
    "fixed-lookahead": [*TINY, *EXACT, *LOOKAHEAD],
    # two trainers per machine: DistDGL as shipped on loopback (the shim pins machine ids), and the paper's keep
    # policy on the emulated network, where each machine has its own address and /dev/shm and no shim
    "none-t2": [*CORA_T2, "--controller", "none"],
    "fixed-decay-t2": [*T2_DECAY, *(["--network", "netns", "--link-rate", "1gbit"] if availability() is None else [])],
    # ... and one buffer per machine, shared by its two trainers (on loopback: the host's /dev/shm holds both
    # machines' buffers, named apart)
    "fixed-lookahead-t2-shared": T2_SHARED,
    # a partition made by DGL's own tooling under DGL's example names (features, labels), trained as it lies by the
    # built-in trainer: what a user's DGL-style script (examples/distdgl_graphsage.py) must fetch, row for row
    "builtin-theirs": THEIRS,
    # the agent with scripted answers (SCRIPT), synchronous: every request answered, in order; no trace, so
    # `rudder replay-metrics` replays it from its recorded windows alone
    "llm-scripted-sync": [*TINY, "--epochs", "2", "--verify", "--controller", "llm", "--model", "scripted:{script}",
                          "--sync", *ASKS_THE_MODEL],
}
PERIOD = 4
"""massivegnn-decay replaces every PERIOD minibatches (and skips in between)."""
SCRIPT = [{"decision": "replace", "hits": "increase", "comm": "decrease", "reason": "stale entries"},
          "not json at all",
          {"decision": "skip", "hits": "unchanged", "comm": "unchanged", "reason": "stable"}]
"""The scripted model's answers, one per line, cycling per trainer: valid replace, invalid (a fallback), valid skip."""


class ReferenceRuns:
    """Builds a reference run the first time a test asks for it; later asks get the same directory."""

    def __init__(self, root: Path):
        self.root = root
        self.built: dict[str, Path | AssertionError] = {}
        self.script = root / "script.jsonl"
        self.script.write_text("".join(json.dumps(answer) + "\n" for answer in SCRIPT))

    @cached_property
    def theirs(self) -> Path:
        """cora partitioned by DGL's own tooling, its node data under DGL's example names: the partition JSON."""
        return their_partition(self.root / "theirs")

    def __call__(self, name: str) -> Path:
        if name not in self.built:
            out = self.root / name
            args = [arg.format(script=self.script, theirs=self.theirs if "{theirs}" in arg else "")
                    for arg in REFERENCE[name]]
            proc = rudder("train", *args, "--out", str(out), timeout=600)
            self.built[name] = out if proc.returncode == 0 else AssertionError(
                f"reference run {name} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        result = self.built[name]
        if isinstance(result, AssertionError):
            raise result
        return result


def their_partition(folder: Path) -> Path:
    """cora as a DGL user partitions it (DGL's example names its node data features and labels): the JSON."""
    import dgl

    from rudder_agent.data import load_dataset

    g = load_dataset("cora").graph.clone()
    g.ndata["features"], g.ndata["labels"] = g.ndata.pop("feat"), g.ndata.pop("label")
    with contextlib.redirect_stdout(io.StringIO()):
        dgl.distributed.partition_graph(g, "theirs", 2, str(folder), part_method="metis")
    return folder / "theirs.json"
