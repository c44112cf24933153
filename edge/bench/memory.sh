#!/bin/bash
# Memory of the edge under the two loads of issue 14, with --cache-size 64MiB:
#   slow:  10 clients request distinct 50 MB objects and never read them (held 45 s);
#   burst: 1500 concurrent misses of distinct 1 MB objects, read to the end.
# Peak RSS while loaded and RSS 5 s after, sampled every 100 ms from /proc, for each
# edge binary given (e.g. the build before and after a change), side by side.
# Usage (from the workspace root):
#   cargo build --release -p edge --bin edge --example memload
#   EDGES="before=/tmp/edge-before after=target/release/edge" edge/bench/memory.sh
# env: EDGES (LABEL=PATH ...), SCENARIOS (default "slow burst"), CACHE (64MiB),
#      HOLD (45, seconds the slow clients hold), OUT (target/memload), EDGE_ARGS.
# Bounded: each run ends after its clients finish (the slow ones after HOLD s, the
# burst's requests time out after 120 s); only the edges it started are stopped.
set -eu
EDGES=${EDGES:-after=target/release/edge}
SCENARIOS=${SCENARIOS:-slow burst}
CACHE=${CACHE:-64MiB}
HOLD=${HOLD:-45}
OUT=${OUT:-target/memload}
MEMLOAD=${MEMLOAD:-target/release/examples/memload}
args=()
for e in $EDGES; do args+=(--edge-bin "$e"); done
for s in $SCENARIOS; do
    # shellcheck disable=SC2086
    "$MEMLOAD" "${args[@]}" --scenario "$s" --cache-size "$CACHE" --hold-s "$HOLD" \
        --out "$OUT" --edge-args ${EDGE_ARGS:-}
done
