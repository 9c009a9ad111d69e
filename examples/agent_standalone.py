"""Feed synthetic metric windows through the Rudder agent and print its decisions.

No DistDGL needed: try a model or a prompt version before a training run.

    python examples/agent_standalone.py                                  # embedded SmolLM2, offline
    python examples/agent_standalone.py --model ollama:llama3.2:3b --cot
    python examples/agent_standalone.py --model openai:qwen2.5@http://127.0.0.1:8000/v1
"""

from __future__ import annotations

import argparse
import random
import statistics

from rudder_agent.settings.agent import AgentConfig
from rudder_agent.agent.controller import LLMController
from rudder_agent.decision import DecisionRequest, StaticFacts
from rudder_agent.log import configure_logging
from rudder_agent.metrics import MinibatchMetrics

FACTS = StaticFacts(dataset="ogbn-products (synthetic)", num_nodes=2_449_029, num_edges=61_859_140, num_parts=4,
                    partition=0, local_nodes=612_000, halo_nodes=350_000, capacity=17_500, total_minibatches=240,
                    feature_dim=100)
PHASES = [  # (windows, %-Hits at start, %-Hits at end, stale entries, occupied share): a run's typical story
    (2, 0, 25, 0, 0.4),      # buffer filling up: free slots, no stale entries
    (3, 25, 45, 0, 1.0),     # full and useful: nothing stale
    (4, 45, 25, 900, 1.0),   # access pattern drifts: hits fall, stale entries pile up
    (3, 30, 30, 150, 1.0),   # steady
    (2, 30, 28, 600, 1.0),   # last minibatches
]


def synthetic_requests(window_size: int, seed: int):
    """Windows of per-minibatch metrics following PHASES, with sampling noise."""
    rng = random.Random(seed)
    step = 0
    count = sum(p[0] for p in PHASES)
    stride = FACTS.total_minibatches // count
    for windows, start, end, stale, occupied in PHASES:
        for i in range(windows):
            target = start + (end - start) * (i + 1) / windows
            batch = []
            for s in range(step + stride - window_size, step + stride):
                remote = rng.randrange(2_000, 2_400)
                hits = int(remote * min(max(target + rng.uniform(-3, 3), 0), 100) / 100)
                batch.append(MinibatchMetrics(
                    rank=0, epoch=s // 60, step=s, input_nodes=remote * 3, remote_inputs=remote, hits=hits,
                    misses=remote - hits, comm_rows=remote - hits, comm_bytes=(remote - hits) * FACTS.feature_dim * 4))
            step += stride
            occupancy = int(occupied * FACTS.capacity)
            # like the buffer, count empty slots as replaceable too
            yield DecisionRequest(step=step - 1, window=batch, stale=stale + FACTS.capacity - occupancy,
                                  occupancy=occupancy, capacity=FACTS.capacity)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = AgentConfig()
    parser.add_argument("--model", default=defaults.model)
    parser.add_argument("--prompt-version", default=defaults.prompt_version)
    parser.add_argument("--cot", action="store_true", help="chain-of-thought answers")
    parser.add_argument("--fallback", choices=["skip", "rule"], default=defaults.fallback)
    parser.add_argument("--no-guard", action="store_true", help="ask the model even when a replacement cannot help")
    parser.add_argument("--window", type=int, default=5, help="minibatches per request")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args()
    configure_logging("warning")

    config = AgentConfig(model=args.model, prompt_version=args.prompt_version, cot=args.cot, fallback=args.fallback,
                         guard=not args.no_guard, seed=args.seed)
    agent = LLMController(config)
    agent.setup(FACTS)
    print(agent.run_record())
    print(f"{'step':>5} {'%-Hits':>6} {'repl.':>5} {'free':>5}  {'decision':8} {'source':8} "
          f"{'hits':9} {'comm':9} {'secs':>5}  reason")
    outcomes = []
    try:
        for request in synthetic_requests(args.window, args.seed):
            out = agent.decide(request)
            outcomes.append(out)
            hit_pct = 100 * sum(m.hits for m in request.window) / sum(m.remote_inputs for m in request.window)
            print(f"{request.step:>5} {hit_pct:6.1f} {request.stale:>5} {request.capacity - request.occupancy:>5}  "
                  f"{out.decision:8} {out.source:8} {out.expected_hits or '-':9} {out.expected_comm or '-':9} "
                  f"{out.latency_s:5.2f}  {out.reason}")
    finally:
        agent.close()
    asked = [o for o in outcomes if o.source != "guard"]
    if asked:
        valid = sum(o.valid for o in asked)
        print(f"model asked {len(asked)} times: {valid} valid ({100 * valid / len(asked):.0f}%), "
              f"median latency {statistics.median(o.latency_s for o in asked):.2f} s")


if __name__ == "__main__":
    main()
