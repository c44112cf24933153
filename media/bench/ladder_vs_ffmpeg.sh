#!/usr/bin/env bash
# Speed of `media ladder` next to ffmpeg/libx264 (-preset veryfast) making the same ladder
# (same rung sizes and bit rates, 2 s GOPs, audio copied) from the same 60 s 720p x264
# source, timed in one run on this machine. Prints seconds of work per minute of source for
# each, writes them as JSON to media/bench/ladder_vs_ffmpeg.json and draws them in
# media/bench/ladder_vs_ffmpeg.svg.
#
#   media/bench/ladder_vs_ffmpeg.sh [SECONDS]     # default 60
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cargo build --release -q -p media
media=target/release/media

echo "making a ${seconds} s 1280x720 x264 High-profile source with B-frames and AAC..."
ffmpeg -nostdin -v error -y \
  -f lavfi -i "testsrc2=size=1280x720:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
  -t "$seconds" -vf "noise=alls=12:allf=t" \
  -c:v libx264 -preset veryfast -profile:v high -bf 3 -g 60 -keyint_min 60 -sc_threshold 0 -b:v 3000k \
  -c:a aac -b:a 128k "$work/source.mp4"

# The default ladder's rungs at or below 720p, as `media ladder` picks them.
rungs=("300 480 270" "750 640 360" "1200 854 480" "1850 960 540" "2850 1280 720")

now() { date +%s.%N; }

start=$(now)
"$media" ladder "$work/source.mp4" --out "$work/lib" --name bench --ladder default --quiet
media_secs=$(awk "BEGIN { print $(now) - $start }")

filter="[0:v]split=${#rungs[@]}"
for i in "${!rungs[@]}"; do filter+="[s$i]"; done
filter+=";"
outputs=()
for i in "${!rungs[@]}"; do
  read -r kbps w h <<<"${rungs[$i]}"
  filter+="[s$i]scale=${w}:${h}[v$i];"
  outputs+=(-map "[v$i]" -map 0:a -c:a copy -c:v libx264 -preset veryfast -b:v "${kbps}k"
    -g 60 -keyint_min 60 -sc_threshold 0 "$work/ffmpeg_${h}p.mp4")
done
start=$(now)
ffmpeg -nostdin -v error -y -i "$work/source.mp4" -filter_complex "${filter%;}" "${outputs[@]}"
ffmpeg_secs=$(awk "BEGIN { print $(now) - $start }")

per_minute() { awk "BEGIN { printf \"%.1f\", $1 * 60 / $seconds }"; }
media_pm=$(per_minute "$media_secs")
ffmpeg_pm=$(per_minute "$ffmpeg_secs")
ratio=$(awk "BEGIN { printf \"%.2f\", $media_secs / $ffmpeg_secs }")
echo "source: ${seconds} s of 1280x720 30 fps; ladder: 5 rungs 300-2850 kbit/s (270p-720p); $(nproc) cores"
echo "media ladder:                        ${media_pm} s per minute of source"
echo "ffmpeg libx264 -preset veryfast:     ${ffmpeg_pm} s per minute of source"
echo "media ladder / ffmpeg:               ${ratio}x the time"
cat >media/bench/ladder_vs_ffmpeg.json <<JSON
{"source_seconds": ${seconds}, "cores": $(nproc), "rungs": 5,
 "media_ladder_secs_per_minute": ${media_pm}, "ffmpeg_veryfast_secs_per_minute": ${ffmpeg_pm},
 "ratio": ${ratio}}
JSON
cargo run --release -q -p media --example plot_bench -- \
  media/bench/ladder_vs_ffmpeg.json media/bench/ladder_vs_ffmpeg.svg
