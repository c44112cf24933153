#!/bin/bash
# RSS of the edge while clients cycle through a working set of ~268 MB (the two top
# renditions of ../shared/bench/edge content). Needs that origin running:
#   ../shared/bench/edge/run.sh -O            (serves http://127.0.0.1:28080)
# Usage: edge/bench/rss.sh [CACHE_SIZE=128MiB] ; env: EDGE_BIN PORT PAR PASSES ORIGIN_URL
# Bounded: PASSES passes of at most 120 s each; stops only the edge it started.
set -u
SIZE=${1:-128MiB}
EDGE_BIN=${EDGE_BIN:-target/release/edge}
PORT=${PORT:-28093}; PAR=${PAR:-16}; PASSES=${PASSES:-3}
ORIGIN_URL=${ORIGIN_URL:-http://127.0.0.1:28080}
URLS=$(mktemp)
EDGE_PURGE_TOKEN=rss "$EDGE_BIN" --listen 127.0.0.1:$PORT --origin "$ORIGIN_URL" --cache-size "$SIZE" --name rss > /dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; rm -f "$URLS"' EXIT
sleep 0.5
rss() { awk '/VmRSS/{print $2}' /proc/$PID/status; }
for r in 4300 2850; do for i in $(seq -f %03g 0 149); do echo "http://127.0.0.1:$PORT/r${r}k/seg_$i.ts"; done; done > "$URLS"
max=0
for pass in $(seq "$PASSES"); do
    timeout 120 xargs -P "$PAR" -n 1 curl -s -o /dev/null < "$URLS" &
    XP=$!
    while kill -0 $XP 2>/dev/null; do r=$(rss); (( r > max )) && max=$r; sleep 0.1; done
    echo "pass $pass: peak RSS ${max} KiB, now $(rss) KiB"
done
curl -s http://127.0.0.1:$PORT/.edge/metrics | grep -E '^edge_(cache_|evictions)'
curl -s -X PURGE -H 'authorization: Bearer rss' "http://127.0.0.1:$PORT/r*" > /dev/null
sleep 2
echo "after PURGE /r*: $(rss) KiB"
