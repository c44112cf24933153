#!/usr/bin/env bash
# Rivulet's whole test suite, runnable on a fresh Debian machine: installs what the tests
# need (Debian packages only when missing, npm packages from the committed lockfile), builds,
# then runs the Rust tests and the browser suite. Nothing is skipped silently: a missing
# tool makes the tests that need it fail.
set -euo pipefail
cd "$(dirname "$0")"

# nasm before the first build: without it openh264 silently builds without its assembly
# and encodes ~1.5x slower. ffmpeg/ffprobe are the reference client of the media tests,
# chromium the browser suite's, iproute2 the network-namespace tests'.
debian_packages=(nasm ffmpeg chromium iproute2 nodejs npm ca-certificates)
missing=()
for pkg in "${debian_packages[@]}"; do
  case "$pkg" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "test.sh: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# One optimised build serves both: the browser suite and some end-to-end tests run the
# release binaries as real processes, and the tests themselves run optimised (encoding,
# load loops) without a second, debug build of every dependency.
cargo build --release --workspace --bins
cargo test --release --workspace

echo "test.sh: browser suite"
(cd tests/browser && npm ci --no-audit --no-fund && npm test)
