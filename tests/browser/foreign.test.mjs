// An asset another packager made plays in headless Chromium: ffmpeg's HLS with MPEG-TS
// segments (two renditions, H.264 High profile with B-frames and AAC muxed in), dropped
// into the origin's library as ffmpeg wrote it, plays with hls.js from the origin and
// through an edge in front of it, every `.ts` answered as video/mp2t.
//
// Needs `npm ci` here, Debian's Chromium (CHROMIUM_BIN, default /usr/bin/chromium),
// Debian's ffmpeg, and built `origin` and `edge` binaries: ORIGIN_BIN / EDGE_BIN, else
// $CARGO_TARGET_DIR/release, ../../target/release, then ../../target/debug. Screenshots go
// to RESULTS_DIR (default ./results).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const results = process.env.RESULTS_DIR || join(here, "results");
const ASSET = "ffmpeg-ts";
// Long enough to start and play 6 s without reaching the end.
const SECONDS = 16;

function findBinary(name) {
  const candidates = [
    process.env[`${name.toUpperCase()}_BIN`],
    process.env.CARGO_TARGET_DIR && join(resolve(repo, process.env.CARGO_TARGET_DIR), `release/${name}`),
    join(repo, `target/release/${name}`),
    join(repo, `target/debug/${name}`),
  ].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  assert.ok(found, `no ${name} binary in ${candidates.join(", ")}: run \`cargo build --release -p ${name}\` or set ${name.toUpperCase()}_BIN`);
  return found;
}

const children = []; // every process this file started, stopped by PID in after()
let library;
let origin;
let edge;
let browser;

// Starts a server; resolves with the first URL its banner prints after "listening on".
function startServer(bin, args, seconds) {
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: "warn" } });
  children.push(child);
  let stderr = "";
  child.stderr.on("data", (d) => { stderr = (stderr + d).slice(-4000); });
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`${bin} did not start within ${seconds} s\n${stderr}`)), seconds * 1000);
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[^\s/]+)/);
      if (m) { clearTimeout(timer); resolvePromise(m[1]); }
    });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`${bin} exited with ${code}\n${stderr}`)); });
  });
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

// ffmpeg's HLS of a test pattern with a tone, as users package theirs: x264 High profile
// with three B-frames, 2 s GOPs, AAC, 2 s MPEG-TS segments, renditions 360p and 720p each
// with the audio muxed in, a multivariant playlist named master.m3u8.
function packageTsHls(dir) {
  mkdirSync(dir, { recursive: true });
  const args = [
    "-nostdin", "-v", "error", "-y",
    "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
    "-t", String(SECONDS),
    "-filter_complex", "[0:v]split=2[a][b];[a]scale=-2:360[lo];[b]scale=-2:720[hi]",
    "-map", "[lo]", "-map", "1:a", "-map", "[hi]", "-map", "1:a",
    "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-bf", "3",
    "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
    "-b:v:0", "800k", "-b:v:1", "2500k", "-c:a", "aac", "-b:a", "128k",
    "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_segment_type", "mpegts",
    "-master_pl_name", "master.m3u8", "-var_stream_map", "v:0,a:0 v:1,a:1",
    "-hls_segment_filename", join(dir, "%v_%03d.ts"), join(dir, "%v.m3u8"),
  ];
  const run = spawnSync("ffmpeg", args, { encoding: "utf8", timeout: 180_000 });
  assert.equal(run.status, 0, `ffmpeg failed: ${run.stderr || run.error}`);
}

before(async () => {
  mkdirSync(results, { recursive: true });
  library = mkdtempSync(join(tmpdir(), "rivulet-foreign-"));
  packageTsHls(join(library, ASSET));
  origin = await startServer(findBinary("origin"), [
    "--library", library, "--listen", "127.0.0.1:0", "--no-sample",
    "--web-libs", join(here, "node_modules"),
  ], 60);
  edge = await startServer(findBinary("edge"), ["--origin", origin, "--listen", "127.0.0.1:0"], 30);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--autoplay-policy=no-user-gesture-required",
    ],
  });
});

after(async () => {
  await browser?.close();
  await Promise.all(children.map(stop));
  if (library) rmSync(library, { recursive: true, force: true });
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(page, what, done, seconds) {
  const deadline = Date.now() + seconds * 1000;
  let stats;
  while (Date.now() < deadline) {
    stats = await page.evaluate(() => window.rivulet && window.rivulet.stats());
    if (stats && stats.fatal) assert.fail(`fatal player error while waiting for ${what}: ${stats.fatal}`);
    if (stats && done(stats)) return stats;
    await sleep(250);
  }
  assert.fail(`timed out after ${seconds} s waiting for ${what}; last stats: ${JSON.stringify(stats)}`);
}

// Mean luma and the share of non-dark pixels of the frame on show.
function grabFrame(page) {
  return page.evaluate(() => {
    const video = document.getElementById("video");
    const canvas = document.createElement("canvas");
    canvas.width = 160;
    canvas.height = 90;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let sum = 0;
    let bright = 0;
    for (let i = 0; i < data.length; i += 4) {
      const y = 0.2126 * data[i] + 0.7152 * data[i + 1] + 0.0722 * data[i + 2];
      sum += y;
      if (y > 32) bright += 1;
    }
    const n = data.length / 4;
    return { mean: sum / n, brightShare: bright / n };
  });
}

// The watch page of the asset on `server` plays 6 s with hls.js, every transport stream
// segment a 200 of video/mp2t (with a Cache-Status through an edge).
async function playsWithHlsJs(server, viaEdge, shot) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const problems = [];
  const segments = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("response", (r) => {
    if (new URL(r.url()).pathname.endsWith(".ts")) {
      segments.push({ status: r.status(), type: r.headers()["content-type"], cache: r.headers()["cache-status"] });
    }
  });
  try {
    await page.goto(`${server}/watch/${ASSET}?engine=hlsjs`);
    const start = await waitFor(page, "playback to start", (s) => s.currentTime > 0.3 && !s.paused, 30);
    const later = await waitFor(page, "6 s of playback", (s) => s.currentTime >= start.currentTime + 6, 30);
    assert.equal(later.engine, "hlsjs");
    assert.equal(later.fatal, null);
    assert.ok(later.totalVideoFrames > start.totalVideoFrames, `frames grew: ${start.totalVideoFrames} → ${later.totalVideoFrames}`);
    const frame = await grabFrame(page);
    assert.ok(frame.mean > 16 && frame.brightShare > 0.05, `the frame is not black: ${JSON.stringify(frame)}`);
    assert.ok(segments.length >= 3, `transport stream segments fetched: ${JSON.stringify(segments)}`);
    for (const s of segments) {
      assert.equal(s.status, 200, JSON.stringify(s));
      assert.equal(s.type, "video/mp2t", JSON.stringify(s));
      assert.equal(Boolean(s.cache), viaEdge, `Cache-Status ${viaEdge ? "set by the edge" : "absent at the origin"}: ${JSON.stringify(s)}`);
    }
    assert.deepEqual(problems, []);
    await page.screenshot({ path: join(results, shot) });
  } finally {
    await page.close();
  }
}

test("the origin lists ffmpeg's TS HLS folder as an asset with its duration", { timeout: 30_000 }, async () => {
  const index = await (await fetch(`${origin}/`)).text();
  const row = index.split("<tr>").find((r) => r.includes(`<strong>${ASSET}</strong>`));
  assert.ok(row, `${ASSET} on the index page`);
  assert.ok(row.includes(`vod/${ASSET}/master.m3u8`), row);
  assert.ok(row.includes(`${SECONDS.toFixed(1)} s`), row);
});

test("ffmpeg's TS HLS plays with hls.js from the origin", { timeout: 90_000 }, async () => {
  await playsWithHlsJs(origin, false, "foreign-ts-hlsjs.png");
});

test("ffmpeg's TS HLS plays with hls.js through an edge", { timeout: 90_000 }, async () => {
  await playsWithHlsJs(edge, true, "foreign-ts-hlsjs-edge.png");
});
