// Assets another packager made play in headless Chromium, dropped into the origin's
// library as Debian's ffmpeg wrote them (H.264 High profile with B-frames, AAC):
// - its HLS with MPEG-TS segments (two renditions, audio muxed in) plays with hls.js from
//   the origin and through an edge in front of it, every `.ts` answered as video/mp2t;
// - its fMP4 HLS (hls.js) and its timeline DASH (dash.js) play from the edges an origin
//   with `--edge`s steers them to, through the pathways it wrote into their manifests.
//
// Needs `npm ci` here, Debian's Chromium (CHROMIUM_BIN, default /usr/bin/chromium),
// Debian's ffmpeg, and built `origin` and `edge` binaries: ORIGIN_BIN / EDGE_BIN, else
// $CARGO_TARGET_DIR/release, ../../target/release, then ../../target/debug. Screenshots go
// to RESULTS_DIR (default ./results).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { binary, grabFrame, here, launchChromium, results, startServer as start, stopAll, waitFor } from "./harness.mjs";

const ASSET = "ffmpeg-ts";
const FMP4_ASSET = "ffmpeg-fmp4";
const DASH_ASSET = "ffmpeg-dash";
// Long enough to start and play 6 s without reaching the end.
const SECONDS = 16;

let work; // the source and the library, removed in after()
let library;
let origin;
let edge;
let steered; // an origin over the same library that steers players to two edges
let steeredEdges = []; // their hosts
let browser;

// Starts a server this file stops in after(); resolves with its URL.
async function startServer(bin, args, seconds) {
  return (await start(bin, args, seconds)).url;
}

function ffmpeg(args) {
  const run = spawnSync("ffmpeg", ["-nostdin", "-v", "error", "-y", ...args], { encoding: "utf8", timeout: 180_000 });
  assert.equal(run.status, 0, `ffmpeg ${args.join(" ")} failed: ${run.stderr || run.error}`);
}

// A test pattern with a tone, encoded as users' files are: x264 High profile with three
// B-frames, 2 s GOPs, AAC; 360p and 720p video and one audio stream in `file`.
function encodeSource(file) {
  ffmpeg([
    "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
    "-t", String(SECONDS),
    "-filter_complex", "[0:v]split=2[a][b];[a]scale=-2:360[lo];[b]scale=-2:720[hi]",
    "-map", "[lo]", "-map", "[hi]", "-map", "1:a",
    "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-bf", "3",
    "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
    "-b:v:0", "800k", "-b:v:1", "2500k", "-c:a", "aac", "-b:a", "128k", file,
  ]);
}

// ffmpeg's packagings of `source`, without re-encoding, into `lib`: TS HLS (each rendition
// with the audio muxed in), fMP4 HLS (an audio group), DASH with a SegmentTimeline.
function packageAll(source, lib) {
  const hls = ["-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-master_pl_name", "master.m3u8"];
  const ts = join(lib, ASSET);
  mkdirSync(ts, { recursive: true });
  ffmpeg([
    "-i", source, "-map", "0:v:0", "-map", "0:a", "-map", "0:v:1", "-map", "0:a", "-c", "copy",
    ...hls, "-hls_segment_type", "mpegts", "-var_stream_map", "v:0,a:0 v:1,a:1",
    "-hls_segment_filename", join(ts, "%v_%03d.ts"), join(ts, "%v.m3u8"),
  ]);
  const fmp4 = join(lib, FMP4_ASSET);
  mkdirSync(fmp4, { recursive: true });
  ffmpeg([
    "-i", source, "-map", "0:v:0", "-map", "0:v:1", "-map", "0:a", "-c", "copy",
    ...hls, "-hls_segment_type", "fmp4",
    "-var_stream_map", "v:0,agroup:aud v:1,agroup:aud a:0,agroup:aud,default:yes",
    "-hls_segment_filename", join(fmp4, "%v_%03d.m4s"), join(fmp4, "%v.m3u8"),
  ]);
  const dash = join(lib, DASH_ASSET);
  mkdirSync(dash, { recursive: true });
  ffmpeg([
    "-i", source, "-map", "0:v:0", "-map", "0:v:1", "-map", "0:a", "-c", "copy",
    "-f", "dash", "-seg_duration", "2", "-use_template", "1", "-use_timeline", "1",
    "-adaptation_sets", "id=0,streams=v id=1,streams=a", join(dash, "manifest.mpd"),
  ]);
}

before(async () => {
  mkdirSync(results, { recursive: true });
  work = mkdtempSync(join(tmpdir(), "rivulet-foreign-"));
  library = join(work, "library");
  const source = join(work, "source.mp4");
  encodeSource(source);
  packageAll(source, library);
  origin = await startServer(binary("origin"), [
    "--library", library, "--listen", "127.0.0.1:0", "--no-sample",
    "--web-libs", join(here, "node_modules"),
  ], 60);
  edge = await startServer(binary("edge"), ["--origin", origin, "--listen", "127.0.0.1:0"], 30);
  // Two edges in front of the origin, and an origin over the same library that steers
  // players to them.
  const edges = [];
  for (const name of ["e1", "e2"]) {
    const url = await startServer(binary("edge"), ["--origin", origin, "--listen", "127.0.0.1:0", "--name", name], 30);
    edges.push({ name, url });
  }
  steeredEdges = edges.map((e) => new URL(e.url).host);
  steered = await startServer(binary("origin"), [
    "--library", library, "--listen", "127.0.0.1:0", "--no-sample",
    "--web-libs", join(here, "node_modules"),
    ...edges.flatMap((e) => ["--edge", `${e.name}=${e.url}`]),
    "--steering-ttl", "2", "--edge-probe-interval", "250ms",
  ], 60);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await stopAll();
  if (work) rmSync(work, { recursive: true, force: true });
});

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

// hls.js (EXT-X-CONTENT-STEERING, PATHWAY-ID) and dash.js (ContentSteering,
// BaseURL@serviceLocation) on manifests the origin edited: every media segment from one of
// the two edges, none from the origin.
for (const [asset, engine] of [[FMP4_ASSET, "hlsjs"], [DASH_ASSET, "dashjs"]]) {
  test(`ffmpeg's ${asset} plays with ${engine} through the edges the origin steers to`, { timeout: 90_000 }, async () => {
    const manifest = await (await fetch(`${steered}/vod/${asset}/${engine === "hlsjs" ? "master.m3u8" : "manifest.mpd"}`)).text();
    for (const host of steeredEdges) assert.ok(manifest.includes(`http://${host}/vod/${asset}/`), `${host} is a pathway:\n${manifest}`);
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const problems = [];
    const hosts = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("response", (r) => {
      const url = new URL(r.url());
      if (url.pathname.endsWith(".m4s") && !url.pathname.includes("init")) hosts.push(`${url.host} ${r.status()}`);
    });
    try {
      await page.goto(`${steered}/watch/${asset}?engine=${engine}`);
      const start = await waitFor(page, "playback to start", (s) => s.currentTime > 0.3 && !s.paused, 30);
      const later = await waitFor(page, "6 s of playback", (s) => s.currentTime >= start.currentTime + 6, 30);
      assert.equal(later.engine, engine);
      assert.ok(later.totalVideoFrames > start.totalVideoFrames, "frames grew");
      const frame = await grabFrame(page);
      assert.ok(frame.mean > 16 && frame.brightShare > 0.05, `the frame is not black: ${JSON.stringify(frame)}`);
      assert.ok(hosts.length >= 3, `media segments fetched: ${JSON.stringify(hosts)}`);
      const fromEdges = hosts.every((h) => steeredEdges.some((e) => h === `${e} 200`));
      assert.ok(fromEdges, `every segment from a steered edge (${steeredEdges}): ${JSON.stringify(hosts)}`);
      assert.deepEqual(problems, []);
      await page.screenshot({ path: join(results, `foreign-steered-${engine}.png`) });
    } finally {
      await page.close();
    }
  });
}
