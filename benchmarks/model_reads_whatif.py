"""Does the model read the what-if? Its log-odds for replace, per contested window, as measured and swapped.

For each recorded decision window whose what-if is contested (the options differ by at least
``--min-difference`` % of skip's rows), renders the agent's prompt twice, once with the what-if as
measured and once with replace's and skip's figures exchanged, and reads log P(replace) - log P(skip)
at the decision token of the embedded model's answer. A model that reads the figures moves its
log-odds towards the answer the what-if favours, whatever its bias for one word; the swap test
(``--llm-swap-test``) decides by that move.

    rudder replay traces/ogbn-arxiv-2p --rank 0 --controller llm --model scripted:skip.jsonl \\
        --llm-min-difference 100 --policy lookahead --fraction 0.25 --out runs/whatif-agent
    python benchmarks/model_reads_whatif.py runs/whatif-agent --limit 40 --json reads.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from rudder_agent.settings.agent import AgentConfig
from rudder_agent.agent.controller import make_backend
from rudder_agent.agent.context import Context
from rudder_agent.agent.model_nodes import answer_logprobs
from rudder_agent.agent.nodes import build_context, collect_metrics
from rudder_agent.agent.prompts import PromptSet
from rudder_agent.agent.state import AgentState
from rudder_agent.llm.output import decision_logodds
from rudder_agent.log import configure_logging
from rudder_agent.replay.open_loop.facts import run_facts
from rudder_agent.replay.open_loop.stream import load_stream
from rudder_agent.replay.open_loop.windows import rebuild_windows


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a run or replay directory whose decision records carry what-ifs")
    ap.add_argument("--rank", type=int, default=0)
    ap.add_argument("--limit", type=int, default=40, help="contested windows to probe")
    ap.add_argument("--model", default="llamacpp:smollm2-135m")
    ap.add_argument("--prompt-version", default="v2")
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads (2 on an idle 2-core host)")
    ap.add_argument("--min-difference", type=float, default=0.5, help="%% of skip's rows: contested from here")
    ap.add_argument("--json", type=Path, help="write the per-window rows here")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    configure_logging("warning")
    stream = load_stream(args.run, args.rank)
    windows, _ = rebuild_windows(stream)
    facts, _ = run_facts(stream)
    config = AgentConfig(model=args.model, prompt_version=args.prompt_version, n_threads=args.threads,
                         swap_test="on", timeout_s=120)
    backend = make_backend(config)
    context = Context(backend, PromptSet.load(config.prompts_dir, config.prompt_version), config)
    rows = []
    try:
        for window in windows:
            whatif = window.request.whatif
            if whatif is None or whatif.difference < args.min_difference / 100 * whatif.skip_rows:
                continue
            state = AgentState(facts=facts, request=window.request)
            state = state.model_copy(update=collect_metrics(state))
            state = state.model_copy(update={**build_context(state), "whatif": whatif})
            shown, swapped = (decision_logodds(answer_logprobs(backend.invoke(context.prompt(s))))
                              for s in (state, state.model_copy(update={"whatif": whatif.swapped()})))
            rows.append({"step": window.request.step, "favours": whatif.favours, "logodds_shown": shown,
                         "logodds_swapped": swapped})
            print(json.dumps(rows[-1]), flush=True)
            if len(rows) >= args.limit:
                break
    finally:
        backend.close()
    if not rows:
        raise SystemExit(f"no contested window with a what-if in {args.run} (rank {args.rank})")
    moves = [r["logodds_shown"] - r["logodds_swapped"] for r in rows]
    right = sum((m > 0) == (r["favours"] == "replace") for m, r in zip(moves, rows))
    said_replace = sum(r["logodds_shown"] > 0 for r in rows) + sum(r["logodds_swapped"] > 0 for r in rows)
    print(f"{len(rows)} contested windows: the model prefers replace in {said_replace} of {2 * len(rows)} prompts; "
          f"its log-odds move towards the what-if's answer in {right} ({100 * right / len(rows):.0f}%); "
          f"log-odds as measured median {statistics.median(r['logodds_shown'] for r in rows):+.3f}, swapped "
          f"{statistics.median(r['logodds_swapped'] for r in rows):+.3f}, move median {statistics.median(moves):+.3f} "
          f"[{min(moves):+.3f}, {max(moves):+.3f}]")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
