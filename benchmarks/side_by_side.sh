#!/usr/bin/env bash
# The side-by-side benchmark behind docs/benchmarks.md, in three steps (each resumable: finished runs are kept).
#
#   benchmarks/side_by_side.sh               # OUT=runs/bench REPEATS=2 EPOCHS=3
#
# 1. one trace-only recording per dataset and partition count, and the bounds (Belady, oracle, compulsory);
# 2. the classifier: XGBoost on oracle labels from the ogbn-arxiv 2-partition trace (seen there, unseen elsewhere);
# 3. every controller on loopback and on the emulated 1 Gbit/s network (netns needs root; skipped otherwise).
# Run it alone on the machine: epoch times are measured.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/bench}
REPEATS=${REPEATS:-2}
EPOCHS=${EPOCHS:-3}
PY=${PY:-.venv/bin/python}
RUDDER=${RUDDER:-.venv/bin/rudder}
COMMON=(--datasets ogbn-arxiv,com-dblp --parts 2,4 --fractions 0.05,0.25 --epochs "$EPOCHS" --out "$OUT")

"$PY" benchmarks/side_by_side.py "${COMMON[@]}" --controllers none --networks loopback --repeats 0
[[ -f $OUT/xgb-oracle.rcls ]] || "$RUDDER" classifiers train "$OUT/ogbn-arxiv-2p-trace" --model xgb --labels oracle \
  --out "$OUT/xgb-oracle.rcls"
"$PY" benchmarks/side_by_side.py "${COMMON[@]}" --controllers none,fixed,massivegnn,llm,classifier \
  --classifier-path "$OUT/xgb-oracle.rcls" --networks netns,loopback --repeats "$REPEATS"
