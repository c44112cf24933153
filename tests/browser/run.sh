#!/usr/bin/env bash
# Runs the browser suite on a fresh Debian machine: installs Debian's Chromium and Node when
# they are missing (never a browser download), the npm packages pinned by package-lock.json,
# builds the origin and the edge in release mode unless ORIGIN_BIN names an origin, then
# runs `node --test`.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
[ -x "${CHROMIUM_BIN:-/usr/bin/chromium}" ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

npm ci --no-audit --no-fund

# The suite finds the binaries in $CARGO_TARGET_DIR or ../../target (or ORIGIN_BIN, EDGE_BIN).
if [ -z "${ORIGIN_BIN:-}" ]; then
  (cd ../.. && cargo build --release -p origin -p edge)
fi

exec npm test
