#!/usr/bin/env bash
# The ogbn-arxiv controller report (docs/arxiv-report.md): live runs, replays, bounds, tables and figures.
#
#   benchmarks/arxiv_report.sh                 # everything (~6 min live + ~23 min llm replays + ~4 min rest)
#   STEPS="report figures" benchmarks/arxiv_report.sh   # only rebuild the report from existing runs
#
# Steps (in order): live replay sweep report figures, and `probe` (not run by default: the
# llama.cpp thread-count measurement behind "Issues" 1 in the report). A run or replay whose directory
# already holds a summary.json is kept (FORCE=1 redoes it). Run it alone on the machine: the
# live runs start a DistDGL cluster and the llm replays run llama.cpp, and both are timed.
#
# The llm runs use the shipped defaults: the embedded SmolLM2 on 1 llama.cpp thread at nice 19 beside
# training (`--llm-threads`), 30 s per call (`--llm-timeout`). The llm replays are asynchronous on the
# replay's minibatch clock: an answer is applied LATENCY minibatches after its request.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-/tmp/arxiv-report}
STEPS=${STEPS:-live replay sweep report figures}
FORCE=${FORCE:-0}
export RUDDER_CACHE=${RUDDER_CACHE:-/tmp/rc}
RUDDER=${RUDDER:-.venv/bin/rudder}
PY=${PY:-.venv/bin/python}
LATENCY=${LATENCY:-3}   # llm replays: answers arrive 3 minibatches after the request
FIGS=docs/figures
mkdir -p "$OUT/tools" "$OUT/logs"

cat > "$OUT/tools/probe_llm.py" <<'EOF'
"""One embedded SmolLM2 server with N threads: time a plain and a schema-constrained answer (llama.cpp timings)."""
import sys, time, httpx
from rudder_agent.llm.embedded import EmbeddedServer, smollm2_path
from rudder_agent.llm.output import answer_schema
from rudder_agent.paths import PROMPTS_DIR
server = EmbeddedServer(smollm2_path(), n_threads=int(sys.argv[1]), seed=0)
address = server.start()
schema = answer_schema(False).model_json_schema()
messages = [{"role": "system", "content": (PROMPTS_DIR / "decision/v1/system.md").read_text()},
            {"role": "user", "content": "Window: hits 30%, trend flat, stale 500 of 10159. Decide."}]
for fmt in (None, {"type": "json_schema", "json_schema": {"name": "A", "schema": schema, "strict": True}}):
    body = {"model": "x", "messages": messages, "temperature": 0, "max_tokens": 160, **({"response_format": fmt} if fmt else {})}
    tic = time.time()
    t = httpx.post(f"{address}/v1/chat/completions", json=body, timeout=300).json()["timings"]
    print(f"threads={sys.argv[1]} {'schema' if fmt else 'plain '}: {time.time() - tic:5.1f} s, prompt {t['prompt_per_second']:6.1f} tok/s, "
          f"generation {t['predicted_per_token_ms']:7.1f} ms/token ({t['predicted_n']} tokens)", flush=True)
server.close()
EOF

has() { [[ " $STEPS " == *" $1 "* ]]; }
todo() {  # true when $1 must be (re)made; clears it first
  if [[ -f "$1/summary.json" && "$FORCE" != 1 ]]; then echo "keep $1"; return 1; fi
  rm -rf "$1"; return 0
}
timed() {  # timed NAME CMD...: run, log to $OUT/logs/NAME.log, print the wall time
  local name=$1 t0; shift; t0=$(date +%s)
  "$@" > "$OUT/logs/$name.log" 2>&1
  echo "$name: $(( $(date +%s) - t0 )) s"
}
TRAIN=(train --dataset ogbn-arxiv --parts 2 --epochs 3 --trace --policy decay)  # the report's runs: the paper's keep policy

# 1. live runs (DistDGL, 2 trainers, 3 epochs, traces recorded)
if has live; then
  todo "$OUT/none" && timed none "$RUDDER" "${TRAIN[@]}" --controller none --out "$OUT/none"
  for c in fixed massivegnn; do
    for f in 25 05; do
      todo "$OUT/$c-$f" && timed "$c-$f" "$RUDDER" "${TRAIN[@]}" --controller $c --buffer-fraction 0.$f --out "$OUT/$c-$f"
    done
  done
  # the agent live, as shipped (embedded SmolLM2, 1 llama.cpp thread at nice 19, 30 s timeout)
  for f in 25 05; do
    todo "$OUT/llm-live-$f" && timed "llm-live-$f" "$RUDDER" "${TRAIN[@]}" --controller llm \
      --model llamacpp:smollm2-135m --prompt-version v1 --buffer-fraction 0.$f --out "$OUT/llm-live-$f"
  done
fi

# 2. replays on the recorded streams (every controller sees the same stream: sampling is seeded)
if has replay; then
  for f in 25 05; do
    todo "$OUT/oracle-$f" && timed "oracle-$f" "$RUDDER" replay "$OUT/fixed-$f" --controller oracle --horizon 8 \
      --labels 8 --out "$OUT/oracle-$f"
    for cot in no-cot cot; do
      name=llm-replay-$f; [[ $cot == cot ]] && name=llm-cot-replay-$f
      todo "$OUT/$name" && timed "$name" "$RUDDER" replay "$OUT/fixed-$f" --controller llm \
        --model llamacpp:smollm2-135m --prompt-version v1 --$cot --llm-threads 1 --latency "$LATENCY" --labels 8 \
        --out "$OUT/$name"
    done
  done
fi

# 3. buffer-size sweep for the trade-off figure (rule controllers and oracle at 10/15/20 %; Belady per size)
if has sweep; then
  for f in 10 15 20; do
    todo "$OUT/sweep/fixed-$f" && timed "sweep-fixed-$f" "$RUDDER" replay "$OUT/fixed-25" --controller fixed \
      --fraction 0.$f --labels 8 --out "$OUT/sweep/fixed-$f"
    todo "$OUT/sweep/massivegnn-$f" && timed "sweep-massivegnn-$f" "$RUDDER" replay "$OUT/massivegnn-25" \
      --controller massivegnn --fraction 0.$f --labels 8 --out "$OUT/sweep/massivegnn-$f"
    todo "$OUT/sweep/oracle-$f" && timed "sweep-oracle-$f" "$RUDDER" replay "$OUT/fixed-25" --controller oracle \
      --horizon 8 --fraction 0.$f --labels 8 --out "$OUT/sweep/oracle-$f"
  done
  for f in 05 10 15 20 25; do
    timed "bounds-$f" "$RUDDER" bounds "$OUT/fixed-25" --fraction 0.$f --out "$OUT/sweep/bounds-$f.json"
  done
fi

# 0. optional: llama.cpp speed with 2 and 1 threads, alternated (STEPS=probe)
if has probe; then
  for t in 2 1 2 1; do "$PY" "$OUT/tools/probe_llm.py" $t 2>/dev/null | tee -a "$OUT/logs/probe.log"; done
fi

MAIN=(none fixed-25 fixed-05 massivegnn-25 massivegnn-05 llm-live-25 llm-live-05
      oracle-25 oracle-05 llm-replay-25 llm-replay-05 llm-cot-replay-25 llm-cot-replay-05)
# 5. reports: the main one (tables, bounds, per-run trajectories), one overlay per buffer size,
#    and the trade-off over the sweep (replays only for llm: the live llm runs share their label)
if has report; then
  timed report "$RUDDER" report "${MAIN[@]/#/$OUT/}" --bounds --out "$OUT/report"
  timed report-25 "$RUDDER" report $OUT/{none,fixed-25,massivegnn-25,oracle-25,llm-live-25,llm-replay-25,llm-cot-replay-25} \
    --out "$OUT/report-25"
  timed report-05 "$RUDDER" report $OUT/{none,fixed-05,massivegnn-05,oracle-05,llm-live-05,llm-replay-05,llm-cot-replay-05} \
    --out "$OUT/report-05"
  timed report-sweep "$RUDDER" report $OUT/{none,fixed-25,fixed-05,massivegnn-25,massivegnn-05,oracle-25,oracle-05} \
    $OUT/sweep/{fixed,massivegnn,oracle}-{10,15,20} $OUT/{llm-replay,llm-cot-replay}-{25,05} --out "$OUT/report-sweep"
fi

# 6. the committed figures
if has figures; then
  mkdir -p "$FIGS"
  for run in fixed-25 oracle-25 llm-live-25 llm-replay-25 llm-cot-replay-25 fixed-05 llm-cot-replay-05; do
    cp "$OUT/report/trajectory-$run.png" "$FIGS/arxiv-trajectory-$run.png"
  done
  cp "$OUT/report-25/trajectories.png" "$FIGS/arxiv-trajectories-25.png"
  cp "$OUT/report-05/trajectories.png" "$FIGS/arxiv-trajectories-05.png"
  cp "$OUT/report-sweep/tradeoff-ogbn-arxiv-x2.png" "$FIGS/arxiv-tradeoff.png"
  ls -l "$FIGS"/arxiv-*.png
fi
