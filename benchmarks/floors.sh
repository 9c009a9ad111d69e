#!/usr/bin/env bash
# The epoch against its floors: ogbn-arxiv, 2 partitions, 25% buffers, `none` vs the default (fixed, look-ahead W=8),
# on loopback (each variant's compute floor) and on the emulated network at each of RATES (the link floor),
# REPEATS rounds; each round's shaped compares read that round's loopback runs (--compute-floor-from). Odd rounds
# run `none` first, even rounds the default first (a compare runs its variants in the order given).
# With SERVERS=1 each round also runs the first rate with --pull-from servers (DistDGL's read, in turn with the
# sampling), the fetch path before pulls from peers.
#
#   benchmarks/floors.sh     # OUT=runs/floors REPEATS=4 RATES="80mbit 1gbit" SERVERS=1 EPOCHS=3 (netns needs root)
#
# Run it alone on the machine: epoch times are measured. Then, for the timeline of a few minibatches:
#   python benchmarks/timeline.py $OUT/80mbit-r1/none $OUT/80mbit-r1/fixed-0.25 --rank 1 --epoch 1 --out FIG.png
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/floors}
REPEATS=${REPEATS:-4}
RATES=${RATES:-80mbit 1gbit}
SERVERS=${SERVERS:-1}
EPOCHS=${EPOCHS:-3}
RUDDER=${RUDDER:-.venv/bin/rudder}

for r in $(seq 1 "$REPEATS"); do
  order=none,fixed
  [[ $((r % 2)) == 0 ]] && order=fixed,none
  COMMON=(--dataset ogbn-arxiv --parts 2 --epochs "$EPOCHS" --controllers "$order" --fractions 0.25)
  [[ -f $OUT/loop-r$r/comparison.md ]] || "$RUDDER" compare "${COMMON[@]}" --out "$OUT/loop-r$r" --overwrite
  first=1
  for rate in $RATES; do
    shaped=(--network netns --link-rate "$rate" --compute-floor-from "$OUT/loop-r$r")
    [[ -f $OUT/$rate-r$r/comparison.md ]] || "$RUDDER" compare "${COMMON[@]}" "${shaped[@]}" --out "$OUT/$rate-r$r" \
      --overwrite
    if [[ $first == 1 && $SERVERS == 1 && ! -f $OUT/$rate-servers-r$r/comparison.md ]]; then
      "$RUDDER" compare "${COMMON[@]}" "${shaped[@]}" --pull-from servers --out "$OUT/$rate-servers-r$r" --overwrite
    fi
    first=0
  done
done
