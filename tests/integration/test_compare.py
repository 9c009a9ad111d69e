"""`rudder compare` (what `make demo` runs): the runs, the printed table and its ratios to `none`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rudder_agent.records.model_share import SOURCES
from rudder_agent.records.stream import read_jsonl
from tests.integration.helpers import TINY, rudder

pytestmark = pytest.mark.integration

# a variant with its own keep policy (NAME@POLICY; lfu: no window, the smallest run) and the `paper` preset
# (the paper's Rudder: the agent, decay, prompt v1, no what-if) with scripted answers
ARGS = [*TINY, "--epochs", "1", "--controllers", "none,fixed@lfu,paper", "--fractions", "0.25"]
PAPER_SCRIPT = {"decision": "skip", "hits": "unchanged", "comm": "unchanged", "reason": "stable"}
HEADER = ["variant", "policy", "buffer", "comm rows/epoch", "vs none", "wire MB/epoch", "%-Hits", "epoch s", "vs none",
          "decisions r/s/i/g/n", "model asked/answered", "decided by model/guard/no-diff/idle/fallback/rule",
          "agent wait s", "test acc"]


def table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table line in ``text``."""
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("|")]


def expected_row(s: dict, none: dict, variant: str) -> list[str]:
    """What the table must say about run ``s``, derived from its summary.json and none's."""
    d, m = s["decisions"], s["model_share"]
    return [variant, s["policy"] or "-", f"{round(100 * s['buffer_fraction'])}%", f"{s['comm_rows_per_epoch']:,.0f}",
            f"{s['comm_rows_per_epoch'] / none['comm_rows_per_epoch']:.3f}", "-", f"{s['hit_pct']:.1f}",
            f"{s['epoch_time_s']:.2f}", f"{s['epoch_time_s'] / none['epoch_time_s']:.3f}",
            f"{d['replace']}/{d['skip']}/{d['invalid']}/{d['guarded']}/{d['no-difference']}",
            f"{m['asked']}/{m['answered']}", "/".join(str(m["decided"][k]) for k in SOURCES), f"{s['agent_wait_s']:.3f}",
            f"{s['test_acc']:.4f}"]


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("compare-script") / "answers.jsonl"
    path.write_text(json.dumps(PAPER_SCRIPT) + "\n")
    return path


@pytest.fixture(scope="module")
def compared(tmp_path_factory, isolated_cache, script) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("compare") / "cmp"
    proc = rudder("compare", *ARGS, "--model", f"scripted:{script}", "--out", str(out), timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc.stdout


def test_one_run_per_variant_and_the_table_beside_them(compared) -> None:
    out, _ = compared
    assert sorted(p.name for p in out.iterdir()) == ["comparison.md", "fixed@lfu-0.25", "none", "paper-0.25"]
    none, fixed = (json.loads((out / name / "summary.json").read_text()) for name in ("none", "fixed@lfu-0.25"))
    assert (none["controller"], none["buffer_fraction"], fixed["controller"], fixed["buffer_fraction"]) == \
        ("none", 0.0, "fixed", 0.25)
    assert (none["policy"], fixed["policy"]) == (None, "lfu")
    assert none["epochs"] == fixed["epochs"] == 1
    # same minibatches in both runs; the buffer only changes where rows come from
    assert none["input_nodes"] == fixed["input_nodes"] and none["remote_inputs"] == fixed["remote_inputs"]
    assert none["comm_rows"] == none["remote_inputs"] and none["hits"] == 0
    assert fixed["comm_rows"] == fixed["remote_inputs"] - fixed["hits"] + fixed["replace_rows"]
    assert fixed["comm_rows"] < none["comm_rows"]
    for s, name in ((none, "none"), (fixed, "fixed@lfu-0.25")):
        mbs = [m for rank in (0, 1) for m in read_jsonl(out / name / f"metrics-rank{rank}.jsonl", kind="minibatch")]
        assert s["comm_rows_per_epoch"] == s["comm_rows"] == sum(m["comm_rows"] for m in mbs)
    assert fixed["decisions"] == {"replace": fixed["minibatches"], "skip": 0, "invalid": 0, "guarded": 0, "no-difference": 0}


def test_printed_table_has_the_ratios_of_the_summaries(compared) -> None:
    out, stdout = compared
    none, fixed = (json.loads((out / name / "summary.json").read_text()) for name in ("none", "fixed@lfu-0.25"))
    printed = table_rows(stdout)
    assert printed == table_rows((out / "comparison.md").read_text())
    assert printed[0] == HEADER
    paper = json.loads((out / "paper-0.25" / "summary.json").read_text())
    assert printed[2:5] == [expected_row(none, none, "none"), expected_row(fixed, none, "fixed@lfu"),
                            expected_row(paper, none, "paper")]
    # then each machine's rows per epoch (one trainer each here: its rank's)
    assert printed[5] == ["variant", "buffer", "machine 0 rows/epoch", "machine 1 rows/epoch"]
    assert printed[7:] == [[label, row[2], *(f"{m['comm_rows_per_epoch']:,.0f}" for m in s["machines"])]
                           for label, row, s in zip(("none", "fixed@lfu", "paper"), printed[2:5], (none, fixed, paper))]
    assert printed[2][4] == printed[2][8] == "1.000"  # rows and epoch time of none vs none
    # who decided the paper agent's minibatches: each applied decision once, by its source
    decided = dict(zip(SOURCES, map(int, printed[4][11].split("/"))))
    assert sum(decided.values()) == sum(paper["applied"].values()) > 0
    assert decided["guard"] == sum(n for key, n in paper["applied"].items() if key.startswith("guard:"))
    assert float(printed[3][4]) < 1.0  # fewer rows than none, as the summaries say


def test_the_paper_preset_runs_the_papers_agent_live(compared, script) -> None:
    """`paper`: the agent with the decay policy, prompt v1 and no what-if, in a real run, each answer the model's."""
    from rudder_agent.agent.prompts import PromptSet
    from rudder_agent.paths import PROMPTS_DIR

    out, _ = compared
    run = out / "paper-0.25"
    buffer = json.loads((run / "config.json").read_text())["buffer"]
    agent = buffer["controller"]
    assert (agent["name"], buffer["policy"]["name"], agent["prompt_version"], agent["whatif"]) == \
        ("llm", "decay", "v1", False)
    s = json.loads((run / "summary.json").read_text())
    assert (s["controller"], s["policy"], s["buffer_fraction"]) == ("llm", "decay", 0.25)
    assert s["agent"]["prompt_version"] == "v1" and s["agent"]["model"] == f"scripted:{script}"
    assert s["agent"]["prompt_sha256"] == PromptSet.load(PROMPTS_DIR, "v1").sha256
    decisions = [d for rank in (0, 1) for d in read_jsonl(run / f"metrics-rank{rank}.jsonl", kind="decision")]
    assert decisions and all(d["outcome"]["whatif"] is None for d in decisions)  # the paper's agent plays no what-if
    answered = [d["outcome"] for d in decisions if d["outcome"]["source"] == "model"]
    assert s["decisions"]["skip"] == len(answered) and {o["decision"] for o in answered} <= {"skip"}


def test_a_second_compare_reuses_finished_runs(compared, script) -> None:
    out, stdout = compared
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "comparison.md"}
    proc = rudder("compare", *ARGS, "--model", f"scripted:{script}", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert table_rows(proc.stdout) == table_rows(stdout)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing was trained again
