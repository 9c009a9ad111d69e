"""A user's DistDGL script as it is, Rudder attached: examples/distdgl_graphsage.py has the shape of DGL's
examples/distributed/graphsage/node_classification.py (its own argparse, plain ``dgl.distributed.initialize``,
node data named ``features`` and ``labels`` by a partition dgl.distributed.partition_graph made) and is changed only
by these attach lines (ATTACH, the diff from the script without Rudder):

    @@ imports
     import torch.optim as optim
    +
    +from rudder_agent.attach import BufferedFeatures  # RUDDER
    @@ run()
         optimizer = optim.Adam(model.parameters(), lr=args.lr)
    +    features = BufferedFeatures(g, feat="features", total_minibatches=args.num_epochs * -(-len(train_nid) // args.batch_size))  # RUDDER
    @@ the training loop
    -            for step, (input_nodes, seeds, blocks) in enumerate(dataloader):
    +            for step, (input_nodes, seeds, blocks, batch_inputs, _) in enumerate(features.iterate(dataloader, epoch - 1)):  # RUDDER
                     tic_step = time.time()
                     sample_time += tic_step - start
    -                batch_inputs = g.ndata["features"][input_nodes]
    -                batch_labels = g.ndata["labels"][seeds].long()
    +                batch_labels = features.read(g.ndata["labels"], seeds).long()  # RUDDER
    @@ the end of run()
                 print(f"Part {g.rank()}, Val Acc {val_acc:.4f}, Test Acc {test_acc:.4f}")
    +    features.close()  # RUDDER

Run by ``rudder train --trainer SCRIPT -- ARGS`` on the local cluster (here) and on hosts over ssh
(test_ssh_hosts.py) with --verify: every served row checked, the very rows the built-in trainer fetches on the same
partition, seed and settings, and a run that `rudder bounds` reads like the built-in trainer's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from rudder_agent.paths import PROJECT_ROOT
from rudder_agent.records.run_summary import read_summary
from rudder_agent.records.trace import read_trace
from tests.integration.helpers import minibatches, rudder
from tests.integration.reference import THEIRS, THEIRS_SCRIPT_ARGS, their_partition

pytestmark = pytest.mark.integration

EXAMPLE = PROJECT_ROOT / "examples" / "distdgl_graphsage.py"
MAX_CHANGED_LINES = 8


def attach_diff() -> list[list[str]]:
    """The hunks of the module docstring's diff, each a list of its ' ', '-' and '+' lines (indentation kept)."""
    hunks: list[list[str]] = []
    for line in __doc__.splitlines():
        if line.startswith("    @@"):
            hunks.append([])
        elif hunks and line.startswith("    ") and line[4:5] in (" ", "-", "+"):
            hunks[-1].append(line[4:])
    return hunks


def without_rudder(script: str, hunks: list[list[str]]) -> str:
    """The script with the diff undone: each hunk's new lines (context and +) replaced by its old ones."""
    for hunk in hunks:
        new = "\n".join(line[1:] for line in hunk if line[0] in " +")
        old = "\n".join(line[1:] for line in hunk if line[0] in " -")
        assert script.count(new) == 1, f"the example no longer holds this hunk as the diff says:\n{new}"
        script = script.replace(new, old)
    return script


def assert_same_rows(run: Path, builtin: Path) -> None:
    """Every minibatch of every trainer sampled the same input nodes and fetched the same rows as the built-in's."""
    for rank in range(2):
        a, b = list(read_trace(run / f"trace-rank{rank}.rtf")), list(read_trace(builtin / f"trace-rank{rank}.rtf"))
        assert len(a) == len(b) == 8 and all(np.array_equal(x, y) for (_, x), (_, y) in zip(a, b))
        counts = lambda r: [(m["step"], m["hits"], m["comm_rows"]) for m in minibatches(r, rank)]  # noqa: E731
        assert counts(run) == counts(builtin)
    s, ref = read_summary(run), read_summary(builtin)
    assert s.verified_rows == s.input_nodes == ref.input_nodes > 0  # every served row checked
    assert (s.comm_rows, s.hits, s.minibatches) == (ref.comm_rows, ref.hits, ref.minibatches) and s.hits > 0


def their_args(partition: Path) -> list[str]:
    return [arg.format(theirs=partition) for arg in THEIRS]


@pytest.fixture(scope="module")
def theirs(tmp_path_factory) -> Path:
    """cora partitioned by DGL's own tooling (this file's own: it runs beside the session's reference runs)."""
    return their_partition(tmp_path_factory.mktemp("theirs"))


@pytest.fixture(scope="module")
def builtin(theirs, tmp_path_factory) -> Path:
    """The built-in trainer on it (what the reference run `builtin-theirs` is for the ssh test)."""
    out = tmp_path_factory.mktemp("builtin") / "run"
    proc = rudder("train", *their_args(theirs), "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def script_run(theirs, tmp_path_factory) -> tuple[Path, str]:
    """The example script trained on the local cluster: (run directory, what `rudder train` printed)."""
    out = tmp_path_factory.mktemp("script") / "run"
    proc = rudder("train", *their_args(theirs), "--out", str(out), "--trainer", str(EXAMPLE), *THEIRS_SCRIPT_ARGS)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc.stdout


def test_the_attach_lines_are_the_whole_change() -> None:
    hunks = attach_diff()
    changed = [line for hunk in hunks for line in hunk if line[0] in "+-" and line[1:].strip()]
    assert 0 < len(changed) <= MAX_CHANGED_LINES
    plain = without_rudder(EXAMPLE.read_text(), hunks)
    compile(plain, "plain.py", "exec")
    assert "rudder" not in plain.split('"""', 2)[2].lower()  # below the module docstring: DistDGL alone
    assert "dgl.distributed.initialize(args.ip_config)" in plain
    assert 'batch_inputs = g.ndata["features"][input_nodes]' in plain
    # the README shows the same lines
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert all(line in readme for line in changed), [line for line in changed if line not in readme]


def test_a_partition_made_by_dgl_trains_as_it_lies(theirs, builtin) -> None:
    """The built-in trainer reads DGL's names (--feat-key, --label-key) from the partition's own files."""
    run = builtin
    s = read_summary(run)
    assert (s.dataset, s.parts, s.minibatches) == ("graph:theirs", 2, 16)
    assert s.verified_rows == s.input_nodes > 0 and s.hits > 0 and s.remote_inputs > 0
    recorded = json.loads((run / "config.json").read_text())
    assert recorded["own_graph"]["part_config"] == str(theirs) and recorded["graph_name"] == "theirs"
    assert json.loads(Path(recorded["part_config"]).read_text())["part-0"]["part_graph"] == str(
        theirs.parent / "part0" / "graph.dgl")  # the partition's own files, used where they lie


def test_the_script_fetches_exactly_the_rows_of_the_builtin_trainer(builtin, script_run) -> None:
    run, _ = script_run
    assert_same_rows(run, builtin)


def test_the_script_prints_its_own_output_and_the_runs_summary(script_run) -> None:
    run, stdout = script_run
    sections = re.split(r"^--- trainer-(\d)\.log$", stdout, flags=re.M)[1:]
    logs = dict(zip(map(int, sections[::2]), sections[1::2]))
    assert sorted(logs) == [0, 1]
    for rank, text in logs.items():
        assert len(re.findall(rf"^Part {rank}, Epoch Time\(s\): ", text, re.M)) == 2  # the script's own prints
        assert re.search(r"^Summary of node classification\(GraphSAGE\): GraphName theirs ", text, re.M)
    assert "graph:theirs x2 [fixed]: 2 epochs, 16 minibatches" in stdout


def test_the_scripts_run_is_read_by_bounds_like_the_builtin_trainers(builtin, script_run) -> None:
    run, _ = script_run
    printed = [rudder("bounds", str(r)) for r in (run, builtin)]
    assert all(p.returncode == 0 for p in printed), [p.stdout + p.stderr for p in printed]
    assert printed[0].stdout.replace(str(run), "RUN") == printed[1].stdout.replace(str(builtin), "RUN")
