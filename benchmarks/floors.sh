#!/usr/bin/env bash
# The epoch against its floors: ogbn-arxiv, 2 partitions, 25% buffers, `none` vs the default (fixed, look-ahead W=8),
# on loopback (each variant's compute floor) and on the emulated network at RATE (the link floor), REPEATS
# alternating rounds; each round's shaped compare reads that round's loopback runs (--compute-floor-from).
#
#   benchmarks/floors.sh            # OUT=runs/floors REPEATS=3 RATE=200mbit EPOCHS=3 (netns needs root)
#
# Run it alone on the machine: epoch times are measured. Then, for the timeline of a few minibatches:
#   python benchmarks/timeline.py $OUT/shaped-r1/none $OUT/shaped-r1/fixed-0.25 --rank 0 --epoch 1 --out FIG.png
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/floors}
REPEATS=${REPEATS:-3}
RATE=${RATE:-200mbit}
EPOCHS=${EPOCHS:-3}
RUDDER=${RUDDER:-.venv/bin/rudder}
COMMON=(--dataset ogbn-arxiv --parts 2 --epochs "$EPOCHS" --controllers none,fixed --fractions 0.25)

for r in $(seq 1 "$REPEATS"); do
  [[ -f $OUT/loop-r$r/comparison.md ]] || "$RUDDER" compare "${COMMON[@]}" --out "$OUT/loop-r$r" --overwrite
  [[ -f $OUT/shaped-r$r/comparison.md ]] || "$RUDDER" compare "${COMMON[@]}" --network netns --link-rate "$RATE" \
    --compute-floor-from "$OUT/loop-r$r" --out "$OUT/shaped-r$r" --overwrite
done
