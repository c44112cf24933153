#!/usr/bin/env bash
# Requests/s and CPU for one hot 300 KB segment served over loopback by the origin and by
# nginx, measured in the same run with the same wrk settings.
#
#   origin/bench/wrk_vs_nginx.sh [ORIGIN_BIN]      (default target/release/origin)
#
# Needs wrk and nginx (apt-get install -y wrk nginx-light). DURATION (default 10s),
# CONNECTIONS (default 32) and THREADS (default 1) tune wrk. Only loopback is used.
set -euo pipefail
ORIGIN_BIN="${1:-target/release/origin}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"
ORIGIN_PORT=18480
NGINX_PORT=18481
work="$(mktemp -d)"
chmod 755 "$work"  # nginx workers run as an unprivileged user
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/lib/bench/r" "$work/nginx-tmp"
head -c 300000 /dev/urandom > "$work/lib/bench/r/1.m4s"
printf '#EXTM3U\n' > "$work/lib/bench/master.m3u8"
path=/bench/r/1.m4s

cat > "$work/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  open_file_cache max=64;
  client_body_temp_path $work/nginx-tmp;
  types { video/iso.segment m4s; }
  server { listen 127.0.0.1:$NGINX_PORT; root $work/lib; }
}
CONF

# CPU seconds (user + system) used so far by a process and its threads.
cpu() {
  local total=0 pid
  for pid in "$@"; do
    read -r -a f < "/proc/$pid/stat"
    total=$((total + f[13] + f[14]))
  done
  awk -v t="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}

wait_up() {
  for _ in $(seq 1 50); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "server at $1 did not come up" >&2
  exit 1
}

run() {
  local name=$1 url=$2
  shift 2
  local before after out
  curl -sf -o /dev/null "$url"  # warm the cache
  before=$(cpu "$@")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$url")
  after=$(cpu "$@")
  local rps mbs
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  mbs=$(awk '/Transfer\/sec/ {print $2}' <<<"$out")
  printf '%-7s %10s req/s  %10s/s  server CPU %6.2f s over %s  p99 %s\n' \
    "$name" "$rps" "$mbs" "$(awk -v a="$after" -v b="$before" 'BEGIN { print a - b }')" "$DURATION" \
    "$(awk '/ 99%/ {print $2}' <<<"$out")"
}

"$ORIGIN_BIN" --library "$work/lib" --listen "127.0.0.1:$ORIGIN_PORT" --no-sample \
  --web-libs /nonexistent >"$work/origin.log" 2>&1 &
origin_pid=$!
pids+=("$origin_pid")
nginx -c "$work/nginx.conf" -g 'daemon off;' 2>"$work/nginx.log" &
nginx_pid=$!
pids+=("$nginx_pid")
wait_up "http://127.0.0.1:$ORIGIN_PORT/vod$path"
wait_up "http://127.0.0.1:$NGINX_PORT$path"
nginx_workers=$(pgrep -P "$nginx_pid" | tr '\n' ' ')

echo "one 300000-byte segment, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $(nproc) cores"
# shellcheck disable=SC2086
run origin "http://127.0.0.1:$ORIGIN_PORT/vod$path" "$origin_pid"
# shellcheck disable=SC2086
run nginx "http://127.0.0.1:$NGINX_PORT$path" $nginx_workers
