// The watch page plays the sample in headless Chromium with native HLS, hls.js, dash.js and
// Shaka (HLS and DASH); through an edge too when an `edge` binary is there; under a
// throttled network hls.js and dash.js drop to the lowest rendition; and with content
// steering over two edges, hls.js and dash.js carry on from the other edge when theirs is
// killed.
//
// Needs `npm ci` here, Debian's Chromium (CHROMIUM_BIN, default /usr/bin/chromium) and a
// built `origin`: ORIGIN_BIN, else $CARGO_TARGET_DIR/release, ../../target/release, then
// ../../target/debug. The edge is found the same way (EDGE_BIN). Screenshots go to
// RESULTS_DIR (default ./results).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const results = process.env.RESULTS_DIR || join(here, "results");
// Long enough to play 6 s, ramp up, then be throttled down, without reaching the end.
const SAMPLE_SECONDS = Number(process.env.SAMPLE_SECONDS || 40);

// A binary of the workspace: $<NAME>_BIN, else the release or debug build.
function findBinary(name) {
  const candidates = [
    process.env[`${name.toUpperCase()}_BIN`],
    process.env.CARGO_TARGET_DIR && join(resolve(repo, process.env.CARGO_TARGET_DIR), `release/${name}`),
    join(repo, `target/release/${name}`),
    join(repo, `target/debug/${name}`),
  ].filter(Boolean);
  return { found: candidates.find((p) => existsSync(p)), candidates };
}

const children = []; // every process this suite started, stopped by PID in after()
let base; // the origin, http://127.0.0.1:PORT
let browser;
let library;

// Starts a server and resolves with { url, child }: the first URL its banner prints after
// "listening on", and the process.
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
      if (m) { clearTimeout(timer); resolvePromise({ url: m[1], child }); }
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

// The origin on a free port; it builds the small sample into a fresh library first.
function startOrigin() {
  const { found, candidates } = findBinary("origin");
  if (!found) {
    throw new Error(`no origin binary in ${candidates.join(", ")}: run \`cargo build --release -p origin\` or set ORIGIN_BIN`);
  }
  library = mkdtempSync(join(tmpdir(), "rivulet-browser-"));
  return startServer(found, [
    "--library", library, "--listen", "127.0.0.1:0",
    "--web-libs", join(here, "node_modules"),
    "--sample-ladder", "small", "--sample-duration", String(SAMPLE_SECONDS),
  ], 180);
}

function edgeBinary() {
  const { found, candidates } = findBinary("edge");
  assert.ok(found, `no edge binary in ${candidates.join(", ")}: run \`cargo build --release -p edge\` or set EDGE_BIN`);
  return found;
}

before(async () => {
  mkdirSync(results, { recursive: true });
  base = (await startOrigin()).url;
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

// Polls the page's stats until `done(stats)` or the deadline; returns the last stats.
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

// Mean luma and the share of non-dark pixels of a frame grabbed from the video.
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

async function openWatchPage(engine, query = "", server = base, watch = "watch/sample") {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  await page.goto(`${server}/${watch}?engine=${engine}${query}`);
  return { page, problems };
}

// Plays at least 6 s with frames decoded and shown, no fatal error, a frame that is not
// black; saves a screenshot.
async function checkPlayback(engine, page, problems, shot) {
  if (engine === "native") {
    const can = await page.evaluate(() => document.createElement("video").canPlayType("application/vnd.apple.mpegurl"));
    assert.notEqual(can, "", "this Chromium does not play HLS natively");
  }
  const start = await waitFor(page, "playback to start", (s) => s.currentTime > 0.3 && !s.paused, 30);
  const later = await waitFor(page, "6 s of playback", (s) => s.currentTime >= start.currentTime + 6, 30);
  assert.equal(later.engine, engine);
  assert.equal(later.fatal, null);
  assert.ok(later.totalVideoFrames > start.totalVideoFrames, `frames grew: ${start.totalVideoFrames} → ${later.totalVideoFrames}`);
  const frame = await grabFrame(page);
  assert.ok(frame.mean > 16 && frame.brightShare > 0.05, `the frame is not black: ${JSON.stringify(frame)}`);
  assert.deepEqual(problems, []);
  await page.screenshot({ path: join(results, shot) });
}

const ENGINES = ["native", "hlsjs", "dashjs", "shaka-hls", "shaka-dash"];

for (const engine of ENGINES) {
  test(`plays with ${engine}`, { timeout: 90_000 }, async () => {
    const { page, problems } = await openWatchPage(engine);
    try {
      await checkPlayback(engine, page, problems, `play-${engine}.png`);
    } finally {
      await page.close();
    }
  });
}

// The page uses relative URLs only, so it plays through an edge in front of the origin.
test("plays with hls.js and dash.js through an edge", { timeout: 120_000 }, async () => {
  const { url: edge } = await startServer(edgeBinary(), ["--origin", base, "--listen", "127.0.0.1:0"], 30);
  for (const engine of ["hlsjs", "dashjs"]) {
    const { page, problems } = await openWatchPage(engine, "", edge);
    const cacheStatus = [];
    page.on("response", (r) => {
      if (r.url().endsWith(".m4s")) cacheStatus.push(r.headers()["cache-status"]);
    });
    try {
      await checkPlayback(engine, page, problems, `edge-${engine}.png`);
      assert.ok(cacheStatus.length > 0 && cacheStatus.every(Boolean), `segments came through the edge: ${JSON.stringify(cacheStatus.slice(0, 5))}`);
    } finally {
      await page.close();
    }
  }
});

// The origin's default live channel loops the sample on the wall clock.
for (const engine of ["hlsjs", "dashjs"]) {
  test(`plays the live channel with ${engine}`, { timeout: 90_000 }, async () => {
    const { page, problems } = await openWatchPage(engine, "", base, "watch/live/live");
    try {
      await checkPlayback(engine, page, problems, `live-${engine}.png`);
    } finally {
      await page.close();
    }
  });
}

for (const engine of ["hlsjs", "dashjs"]) {
  test(`${engine} drops to the lowest rendition at 600 kbit/s`, { timeout: 120_000 }, async () => {
    // A short forward buffer so the player feels the network within seconds.
    const { page } = await openWatchPage(engine, "&buffer=6");
    try {
      const up = await waitFor(page, "a rendition above the lowest on loopback",
        (s) => s.rendition && s.lowest && s.rendition.id !== s.lowest.id && s.currentTime > 1, 30);
      const cdp = await page.context().newCDPSession(page);
      await cdp.send("Network.enable");
      const bytesPerSecond = (600 * 1000) / 8;
      await cdp.send("Network.emulateNetworkConditions", {
        offline: false, latency: 40, downloadThroughput: bytesPerSecond, uploadThroughput: bytesPerSecond,
      });
      // The player reports the lowest rendition and the decoded frames are its size.
      const down = await waitFor(page, "the lowest rendition",
        (s) => s.rendition && s.lowest && s.rendition.id === s.lowest.id && s.videoHeight === s.lowest.height, 45);
      assert.ok(down.switches >= 1, `switched down from ${JSON.stringify(up.rendition)} (switches: ${down.switches})`);
      await page.screenshot({ path: join(results, `throttled-${engine}.png`) });
    } finally {
      await page.close();
    }
  });
}

// A free loopback port (the edges' addresses go into the origin's flags before they start).
function freePort() {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePromise(port));
    });
  });
}

// A second origin over the suite's library that steers players to two edges in front of
// it (short TTL and probe interval, so a dead edge is left within about two seconds).
async function startSteeredCluster() {
  const { found } = findBinary("origin");
  const ports = [await freePort(), await freePort()];
  const edges = ports.map((port, i) => ({ name: `e${i + 1}`, host: `127.0.0.1:${port}` }));
  const origin = await startServer(found, [
    "--library", library, "--no-sample", "--listen", "127.0.0.1:0",
    "--web-libs", join(here, "node_modules"),
    ...edges.flatMap((e) => ["--edge", `${e.name}=http://${e.host}`]),
    "--steering-ttl", "2", "--edge-probe-interval", "250ms",
  ], 30);
  for (const e of edges) {
    e.child = (await startServer(edgeBinary(), ["--origin", origin.url, "--listen", e.host, "--name", e.name], 30)).child;
  }
  return { origin, edges, stop: () => Promise.all([origin.child, ...edges.map((e) => e.child)].map(stop)) };
}

// hls.js (native content steering and pathway fail-over) and dash.js (ContentSteering,
// `streaming.applyContentSteering`, on by default) play from the edge the origin steers
// them to; that edge is killed; they carry on from the other one without a long stall.
for (const engine of ["hlsjs", "dashjs"]) {
  test(`${engine} moves to the other edge when its edge dies (content steering)`, { timeout: 120_000 }, async () => {
    const cluster = await startSteeredCluster();
    try {
      // A short forward buffer: the player must fetch from the other edge within seconds.
      const { page, problems } = await openWatchPage(engine, "&buffer=6", cluster.origin.url);
      const segments = []; // { host, at, status } of every media segment response
      page.on("response", (r) => {
        if (r.url().endsWith(".m4s")) segments.push({ host: new URL(r.url()).host, at: Date.now(), status: r.status() });
      });
      try {
        await waitFor(page, "playback from an edge", (s) => s.currentTime > 2 && !s.paused && segments.length > 0, 30);
        const serving = segments[segments.length - 1].host;
        const victim = cluster.edges.find((e) => e.host === serving);
        const other = cluster.edges.find((e) => e !== victim);
        assert.ok(victim, `segments come from an edge: ${serving} not in ${cluster.edges.map((e) => e.host)}`);

        const before = await page.evaluate(() => window.rivulet.stats());
        const killedAt = Date.now();
        process.kill(victim.child.pid, "SIGKILL");

        // currentTime must reach 6 s past the kill, and 2 s past what was buffered then (so
        // what plays came from the other edge); the longest time it stands still is the stall.
        const target = before.currentTime + Math.max(6, before.bufferAhead + 2);
        let last = { at: Date.now(), time: before.currentTime };
        let longestStall = 0;
        let stats = before;
        while (Date.now() < killedAt + 30_000 && stats.currentTime < target) {
          await sleep(100);
          stats = await page.evaluate(() => window.rivulet.stats());
          if (stats.fatal) assert.fail(`fatal player error after the kill: ${stats.fatal}`);
          if (stats.currentTime > last.time + 0.01) last = { at: Date.now(), time: stats.currentTime };
          longestStall = Math.max(longestStall, Date.now() - last.at);
        }
        const after = segments.filter((s) => s.at > killedAt);
        const report = `killed ${victim.name} at ${before.currentTime.toFixed(1)} s (${before.bufferAhead.toFixed(1)} s buffered); ` +
          `now ${stats.currentTime.toFixed(1)} s; ` +
          `longest stall ${longestStall} ms; segments after: ${JSON.stringify(after.map((s) => `${s.host} ${s.status}`).slice(0, 8))}; ` +
          `errors: ${JSON.stringify(stats.errors)}`;
        assert.ok(stats.currentTime >= target, `playback went on to ${target.toFixed(1)} s: ${report}`);
        assert.ok(longestStall <= 3000, `no stall over 3 s: ${report}`);
        assert.ok(after.some((s) => s.host === other.host && s.status === 200), `${other.name} served segments after the kill: ${report}`);
        assert.deepEqual(problems, []);
        console.log(`# ${engine}: ${report}`);
        await page.screenshot({ path: join(results, `steering-${engine}.png`) });
      } finally {
        await page.close();
      }
    } finally {
      await cluster.stop();
    }
  });
}
